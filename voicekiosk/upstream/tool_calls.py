"""``ToolCalls``: the function calls of one call's sideband (``sideband.py``), run through the app's
``ToolRunner`` and answered when the engine allows it.

- Each response's calls make a ``Batch``; a batch is answered once its response has ended and none
  of its calls runs any more. Realtime answers each batch on its own; GPT-Live (``openai-live.md``
  §3.3 step 4) takes ONE ``response.create`` after all pending outputs, so its batches are answered
  together, once no batch of the session is unfinished. A failed response's calls are dropped.
- A response whose end went unseen while the sideband was down is ``unsure``: it counts as
  unfinished until an event shows it going on (then its end will come) or ``settle`` decides it
  ended while the socket was down.
- At most ``MAX_RUNNING`` runs at once per call; a call over it (or past ``MAX_SEEN``) is answered
  at once with a short error the model can say.
- The page hears ``running`` only when a call is still running after ``RUNNING_AFTER`` s (instant
  tools make no "Working on it…"), and ``done`` only if it heard ``running``.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from typing import Any

from voicekiosk.tools.base import Caller
from voicekiosk.tools.runner import ToolRunner
from voicekiosk.upstream.dialects import Dialect

log = logging.getLogger("voicekiosk.tools")

MAX_SEEN = 10_000  # call ids remembered per call (a call makes a handful)
MAX_RUNNING = 4  # tool runs at once per call
RUNNING_AFTER = 0.3  # seconds a tool runs before the page shows "Working on it…"
BUSY = json.dumps({"error": "Too many tools are running for this call; try again in a moment."})
OVERFLOW = json.dumps({"error": "This call has made too many tool calls."})


@dataclass
class Batch:
    """The function calls of one response (Realtime) or delegation (Live)."""

    running: int = 0
    finished: bool = False
    unsure: bool = False  # its end may have come while the sideband was down
    outputs: list[tuple[str, str]] = field(default_factory=list)


class ToolCalls:
    """One call's function calls; ``send`` gets the events that answer them, ``spawn`` runs work."""

    def __init__(
        self,
        call_id: str,
        runner: ToolRunner,
        dialect: Dialect,
        caller: Caller | None,
        send: Callable[[list[dict[str, Any]]], None],
        spawn: Callable[[Coroutine[Any, Any, None]], None],
        ran: Callable[[bool], None] | None = None,
    ) -> None:
        """``ran``: told of each run's end (whether the tool answered), for the call record."""
        self.call_id = call_id
        self._ran = ran
        self._runner, self._dialect, self._caller = runner, dialect, caller
        self._send, self._spawn = send, spawn
        self._seen: set[str] = set()  # call_ids already run: an event seen twice runs once
        self._batches: dict[str, Batch] = {}
        self.running = 0  # runs of this call not finished
        self._told: asyncio.TimerHandle | bool = False  # the page's "running": to come (timer) or said
        self.closed = False

    def close(self) -> None:
        self.closed = True
        if isinstance(self._told, asyncio.TimerHandle):
            self._told.cancel()

    # -- what the sideband reads ------------------------------------------------------------

    def call(self, key: str, item: dict[str, Any]) -> None:
        """A function call of batch ``key``: run it, or answer at once if over a limit."""
        call_id, name, arguments = item.get("call_id"), item.get("name"), item.get("arguments")
        if not (isinstance(call_id, str) and isinstance(name, str) and isinstance(arguments, str)):
            log.warning("sideband of %s: a function call without call_id, name or arguments", self.call_id)
            return
        if call_id in self._seen:
            return
        batch = self._batches.setdefault(key, Batch())
        refusal = OVERFLOW if len(self._seen) >= MAX_SEEN else BUSY if self.running >= MAX_RUNNING else None
        if refusal is not None:
            if refusal is BUSY:
                self._seen.add(call_id)  # answered: a replay of its event after a reopening is not answered twice
            log.warning("sideband of %s: a tool call refused: %s", self.call_id, json.loads(refusal)["error"])
            batch.outputs.append((call_id, refusal))
            self._flush()
            return
        self._seen.add(call_id)
        batch.running += 1
        self.running += 1
        if self.running == 1 and self._caller is not None and self._told is False:
            self._told = asyncio.get_running_loop().call_later(RUNNING_AFTER, self._tell_running)
        self._spawn(self._run(batch, call_id, name, arguments))

    def ended(self, key: str, failed: bool) -> None:
        """Batch ``key``'s response ended (``failed``: its calls are dropped)."""
        if (batch := self._batches.get(key)) is None:
            return
        if failed:
            del self._batches[key]
            log.warning("sideband of %s: the response failed: its tool output(s) not sent", self.call_id)
        else:
            batch.finished, batch.unsure = True, False
        self._flush()

    def going_on(self, key: str) -> None:
        """An event of batch ``key``'s response: it had not ended; its end will be seen."""
        if (batch := self._batches.get(key)) is not None:
            batch.unsure = False

    def dropped(self) -> None:
        """The sideband dropped: what ends while it is down goes unseen."""
        for batch in self._batches.values():
            batch.unsure = batch.unsure or not batch.finished

    @property
    def unsure(self) -> bool:
        return any(batch.unsure for batch in self._batches.values())

    @property
    def held(self) -> int:
        """Outputs whose response has ended, not sent yet (Live: other batches are unfinished)."""
        return sum(len(batch.outputs) for batch in self._batches.values() if batch.finished and not batch.running)

    def settle(self) -> None:
        """The sideband has been back a while and nothing showed the unsure responses going on:
        they ended while it was down."""
        for batch in self._batches.values():
            if batch.unsure:
                batch.finished, batch.unsure = True, False
        self._flush()

    # -- running and answering --------------------------------------------------------------

    async def _run(self, batch: Batch, call_id: str, name: str, arguments: str) -> None:
        try:
            outcome = await self._runner.call(name, arguments, self._caller)
        finally:
            self.running -= 1
            batch.running -= 1
            if self.running == 0:
                self._tell_done()
        if self._ran is not None:
            self._ran(outcome.ok)
        batch.outputs.append((call_id, outcome.output))
        self._flush()

    def _flush(self) -> None:
        """Answer what may be answered: Realtime each finished batch, Live all batches at once."""
        if self.closed:
            return
        ready = [key for key, batch in self._batches.items() if batch.finished and not batch.running]
        if self._dialect.together and len(ready) < len(self._batches):
            return
        groups = [self._batches.pop(key).outputs for key in ready]
        if self._dialect.together:
            groups = [[output for group in groups for output in group]]
        for outputs in groups:
            if outputs:
                self._send(self._dialect.answer(outputs))

    def _tell_running(self) -> None:
        self._told = bool(self.running) and self._caller is not None
        if self._told and self._caller is not None:
            self._caller.tell_page({"type": "tool", "state": "running"})  # the page: "working on it"

    def _tell_done(self) -> None:
        told, self._told = self._told, False
        if isinstance(told, asyncio.TimerHandle):
            told.cancel()
        elif told and self._caller is not None:
            self._caller.tell_page({"type": "tool", "state": "done"})
