"""``ToolRunner``: runs the function calls a session asks for, whichever engine asked. Arguments are
checked against the tool's schema before anything runs; every call is bounded by the tool's
timeout; whatever happens, the model gets text it can use (a result, or a short failure to say)."""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from voicekiosk.redact import redact
from voicekiosk.tools.base import Caller, CallTool, Tool, ToolError, declaration

log = logging.getLogger("voicekiosk.tools")
MAX_ARGUMENTS = 16 * 1024  # a model's arguments are short; more is a bug or an injection
MAX_OUTPUT = 8 * 1024  # what the model is given back, at most


@dataclass(frozen=True)
class Outcome:
    """One call: the text for the model, whether it worked, and how long it took."""

    output: str
    ok: bool
    ms: float


class ToolObserver(Protocol):
    """What keeps account of tool calls (the metrics). Must not raise or block."""

    def tool_ran(self, name: str | None, outcome: Outcome) -> None:
        """``name``: the tool that ran (None: the model asked for one there is not)."""
        ...


class ToolRunner:
    """The tools by name, and the way to call them."""

    def __init__(self, tools: Sequence[Tool]) -> None:
        import jsonschema  # only when there are tools

        self.tools = {tool.name: tool for tool in tools}
        self._validators = {t.name: jsonschema.Draft202012Validator(dict(t.parameters)) for t in tools}
        self._observers: list[ToolObserver] = []

    def observe(self, observer: ToolObserver) -> None:
        """Tell ``observer`` of every call from now on."""
        self._observers.append(observer)

    def __bool__(self) -> bool:
        return bool(self.tools)

    def declarations(self) -> list[dict[str, Any]]:
        """The session's ``function`` tools."""
        return [declaration(tool) for tool in self.tools.values()]

    async def call(self, name: str, arguments: str, caller: Caller | None = None) -> Outcome:
        """Run ``name`` with the model's ``arguments`` (a JSON string) in ``caller``'s call (None: by
        hand, outside any call). Never raises."""
        started = time.perf_counter()
        ok, output = False, ""
        try:
            output, ok = await self._call(name, arguments, caller), True
        except ToolError as exc:
            output = json.dumps({"error": str(exc)[:300]})
        ms = (time.perf_counter() - started) * 1000
        if len(output) > MAX_OUTPUT:
            output = output[:MAX_OUTPUT] + " [cut]"
        shown = redact(arguments[:200]) if name in self.tools else "…"
        # After the caller has sent the output on (it does so without yielding): a terminal line takes
        # about a millisecond to draw, and the model waits for the output, not for the line.
        asyncio.get_running_loop().call_soon(
            log.info, "tool %s(%s): %s in %.0f ms", _safe(name), shown, "ok" if ok else "failed", ms
        )
        outcome = Outcome(output, ok, ms)
        for observer in self._observers:
            observer.tool_ran(name if name in self.tools else None, outcome)
        return outcome

    async def _call(self, name: str, arguments: str, caller: Caller | None) -> str:
        tool = self.tools.get(name)
        if tool is None:
            raise ToolError(f"There is no tool called {_safe(name)}.")
        args = _arguments(arguments)
        error = next(iter(self._validators[name].iter_errors(args)), None)
        if error is not None:
            where = "/".join(str(p) for p in error.absolute_path) or "arguments"
            raise ToolError(f"Invalid arguments for {name} ({where}): {error.message[:200]}")
        try:
            async with asyncio.timeout(tool.timeout):
                if isinstance(tool, CallTool):
                    if caller is None:
                        raise ToolError(f"{name} works only during a call.")
                    return await tool.run_in(caller, args)
                return await tool.run(args)
        except TimeoutError:
            raise ToolError(f"{name} took too long (over {tool.timeout:g} s).") from None
        except ToolError:
            raise
        except Exception as exc:  # a tool's own bug must not end the call: the model hears it failed
            log.warning("tool %s raised %s", name, type(exc).__name__, exc_info=log.isEnabledFor(logging.DEBUG))
            raise ToolError(f"{name} failed.") from None


def _arguments(raw: str) -> dict[str, Any]:
    if len(raw) > MAX_ARGUMENTS:
        raise ToolError("The arguments are too long.")
    try:
        args = json.loads(raw or "{}")
    except (ValueError, RecursionError):
        raise ToolError("The arguments are not JSON.") from None
    if not isinstance(args, dict):
        raise ToolError("The arguments must be a JSON object.")
    return args


def _safe(name: str) -> str:
    """A name from the model, fit for a log line (it could be anything)."""
    return name[:64].encode("ascii", "backslashreplace").decode() if name.isprintable() else repr(name[:64])
