"""Local MCP servers (``[[mcp]]`` with ``command`` or ``url``): this server starts or reaches them with
the ``mcp`` SDK, lists their tools once at start, and runs the agent's calls through them.

Each server lives in one asyncio task of its own, which enters and leaves every SDK context (the
transport, the session: anyio task groups) itself; calls from other tasks only send requests on the
live session. A connection that ends (the process died, the stream closed, a call saw the transport
break) is made again with bounded back-off, and the tools listed at start keep their names."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import time
from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from voicekiosk.errors import StartupError
from voicekiosk.logsafe import escape
from voicekiosk.redact import redact, register_secret
from voicekiosk.tools.base import Tool, ToolError
from voicekiosk.tools.child_output import stderr_lines
from voicekiosk.tools.mcp_tools import make_tools, result_text
from voicekiosk.tools.spec import McpSpec

if TYPE_CHECKING:
    import mcp_types
    from mcp import ClientSession

log = logging.getLogger("voicekiosk.tools.mcp")
MAX_TOOLS = 128  # a server listing more is paging forever, or not meant for a voice agent
BACKOFF_FIRST, BACKOFF_MAX = 0.5, 30.0  # seconds between reconnections, doubling
STABLE = 10.0  # a connection that lasted this long starts the back-off over
START = 30.0  # seconds, at least, for a first tool list: `uvx`/`npx` may fetch the server first
STOP_GRACE = 8.0  # the SDK needs up to ~6 s to stop a stuck stdio server (close, TERM, KILL)


class McpServer:
    """One ``[[mcp]]`` server run (or reached) by this server, kept connected by its own task.

    Raises:
      ConfigError: a header's environment variable is not set.
    """

    def __init__(self, spec: McpSpec, environ: Mapping[str, str] | None = None) -> None:
        self.spec = spec
        self.headers: dict[str, str] = {}
        for header, secret in spec.headers:
            value = secret.value(environ)
            register_secret(value)
            self.headers[header] = value
        self.listing: list[mcp_types.Tool] = []  # as listed at the first connection
        self.connections = 0
        self._session: ClientSession | None = None
        self._up = asyncio.Event()  # a session is there to call
        self._wake = asyncio.Event()  # the connection ended, or stop() was called
        self._stopping = False
        self._first: asyncio.Future[None] | None = None
        self._task: asyncio.Task[None] | None = None

    @property
    def label(self) -> str:
        return f"mcp {self.spec.name}"

    @property
    def connected(self) -> bool:
        """A session is there to call right now (else it is reconnecting, or stopped)."""
        return self._up.is_set()

    async def start(self) -> None:
        """Connect and list the tools (within ``START`` s, or the spec's timeout if longer); then
        stay connected.

        Raises:
          StartupError: the server could not be started, reached or listed.
        """
        within = max(START, self.spec.timeout)
        self._first = asyncio.get_running_loop().create_future()
        self._task = asyncio.create_task(self._main(), name=f"voicekiosk {self.label}")
        try:
            async with asyncio.timeout(within):
                await asyncio.shield(self._first)
        except TimeoutError:
            await self.stop()
            raise StartupError(f"[[mcp]] {self.spec.name}: no tool list within {within:g} s") from None
        except BaseException:
            await self.stop()
            raise

    async def stop(self) -> None:
        """End the connection (the stdio process with it) and the task; bounded."""
        self._stopping = True
        self._wake.set()
        task, self._task = self._task, None
        if task is None:
            return
        done, _ = await asyncio.wait({task}, timeout=STOP_GRACE)
        if not done:  # the SDK bounds its own shutdown; this is the last resort
            task.cancel()
            await asyncio.wait({task}, timeout=2.0)

    async def call(self, remote_name: str, arguments: dict[str, Any], name: str) -> str:
        """Call a tool; failures become ``ToolError`` with a short message.

        The wait for a (re)connection and the call itself are bounded by the caller (the runner).
        """
        from mcp import MCPError
        from mcp_types import CONNECTION_CLOSED, REQUEST_TIMEOUT

        await self._up.wait()
        session = self._session
        if session is None:
            raise ToolError(f"{name} is not available right now.")
        try:
            result = await session.call_tool(remote_name, arguments, read_timeout_seconds=self.spec.timeout)
        except MCPError as exc:
            if exc.code == REQUEST_TIMEOUT:
                raise ToolError(f"{name} took too long (over {self.spec.timeout:g} s).") from None
            if exc.code == CONNECTION_CLOSED:
                self._broken()
                raise ToolError(f"{name} is not available right now.") from None
            raise ToolError(f"{name} failed: {_short(exc.message)}") from None
        except Exception as exc:  # the transport broke under the call: reconnect
            log.warning("%s: %s during %s", self.label, type(exc).__name__, name)
            self._broken()
            raise ToolError(f"{name} is not available right now.") from None
        text = result_text(result)
        if result.is_error:
            raise ToolError(f"{name} failed: {_short(text)}")
        return text

    def stopping(self) -> bool:
        """Whether ``stop()`` was called."""
        return self._stopping

    def _broken(self) -> None:
        if self._up.is_set():
            self._wake.set()

    # -- the server's own task ---------------------------------------------------------------------

    async def _main(self) -> None:
        delay = BACKOFF_FIRST
        while True:
            if self.stopping():
                return
            self._wake.clear()  # no await between the check and this: a stop() is never lost
            started = time.monotonic()
            try:
                await self._connect_once()
            except Exception as exc:
                if self._first is not None and not self._first.done():
                    self._first.set_exception(StartupError(f"[[mcp]] {self.spec.name}: {_describe(exc)}"))
                    return
                if not self.stopping():
                    log.warning("%s: %s", self.label, _describe(exc))
            if self.stopping():
                return
            self._wake.clear()  # set by the connection's end; from now on only stop() sets it
            if time.monotonic() - started >= STABLE:
                delay = BACKOFF_FIRST
            log.warning("%s: connection ended; trying again in %.1f s", self.label, delay)
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(delay):
                    await self._wake.wait()
            delay = min(delay * 2, BACKOFF_MAX)

    async def _connect_once(self) -> None:
        """One connection, from start to end, entered and left in this task."""
        import anyio
        from mcp import ClientSession

        async with contextlib.AsyncExitStack() as stack:
            read, write = await self._transport(stack)
            group = await stack.enter_async_context(anyio.create_task_group())
            stack.callback(group.cancel_scope.cancel)  # runs before the group is left
            ends, session_read = anyio.create_memory_object_stream[Any](0)

            async def forward() -> None:
                """The transport's messages to the session; their end is the connection's."""
                async with ends:
                    async for item in read:
                        await ends.send(item)
                self._wake.set()

            group.start_soon(forward)
            session = await stack.enter_async_context(ClientSession(session_read, write))
            with anyio.fail_after(max(START, self.spec.timeout)):
                await session.initialize()
                listing = await _list_tools(session)
            self.connections += 1
            if self._first is not None and not self._first.done():
                self.listing = listing
                self._first.set_result(None)
            else:
                log.info("%s: connected again", self.label)
                _compare(self.label, self.listing, listing)
            self._session = session
            self._up.set()
            try:
                await self._wake.wait()
            finally:
                self._up.clear()
                self._session = None

    async def _transport(self, stack: contextlib.AsyncExitStack) -> Any:
        """The stdio or streamable-HTTP streams, entered on ``stack``."""
        if self.spec.command:
            from mcp import StdioServerParameters, stdio_client

            command, *args = self.spec.command
            errlog = await stack.enter_async_context(stderr_lines(self.label))
            params = StdioServerParameters(command=command, args=args)
            try:
                return await stack.enter_async_context(stdio_client(params, errlog=errlog))
            finally:
                errlog.close()  # the child has its own copy; its end is the reader's EOF
        from mcp.client.streamable_http import streamable_http_client
        from mcp.shared._httpx_utils import create_mcp_http_client

        client = await stack.enter_async_context(create_mcp_http_client(headers=self.headers))
        assert self.spec.url is not None
        return await stack.enter_async_context(streamable_http_client(self.spec.url, http_client=client))


class McpServers:
    """Every local ``[[mcp]]`` server, owned by the app: ``start()`` before serving, ``stop()`` after.

    ``reserved``: names already taken (webhooks, built-ins); an MCP tool that would clash with one,
    or with another server's tool, is named ``{server}_{tool}`` instead.
    """

    def __init__(
        self, specs: Sequence[McpSpec], reserved: Iterable[str] = (), environ: Mapping[str, str] | None = None
    ) -> None:
        self.servers = [McpServer(spec, environ) for spec in specs]
        self.reserved = frozenset(reserved)
        self.tools: list[Tool] = []

    async def start(self) -> list[Tool]:
        """Start every server at once and make their tools.

        Raises:
          StartupError: a server could not be started or listed (the others are stopped).
          ConfigError: an ``allowed_tools`` name the server does not offer, or clashing names.
        """
        _import_sdk()  # ~1 s the first time (pydantic models): not counted against any server
        results = await asyncio.gather(*(s.start() for s in self.servers), return_exceptions=True)
        failed = next((r for r in results if isinstance(r, BaseException)), None)
        try:
            if failed is not None:
                raise failed
            self.tools = make_tools(self.servers, self.reserved)
        except BaseException:
            await self.stop()
            raise
        return self.tools

    async def stop(self) -> None:
        """Stop every server (their processes end with them); bounded."""
        await asyncio.gather(*(s.stop() for s in self.servers))


# -- helpers --------------------------------------------------------------------------------------


def _import_sdk() -> None:
    """The SDK's modules, loaded once, before any server's clock starts."""
    import anyio  # noqa: F401
    import mcp.client.streamable_http  # noqa: F401


async def _list_tools(session: ClientSession) -> list[mcp_types.Tool]:
    """Every page of ``tools/list``, bounded."""
    from mcp_types import PaginatedRequestParams

    tools: list[mcp_types.Tool] = []
    cursor: str | None = None
    while True:
        page = await session.list_tools(params=PaginatedRequestParams(cursor=cursor) if cursor else None)
        tools += page.tools
        cursor = page.next_cursor
        if not cursor or len(tools) >= MAX_TOOLS:
            return tools[:MAX_TOOLS]


def _compare(label: str, before: Sequence[mcp_types.Tool], after: Sequence[mcp_types.Tool]) -> None:
    gone = {t.name for t in before} - {t.name for t in after}
    if gone:
        log.warning("%s: no longer offers %s", label, escape(", ".join(sorted(gone)))[:200])


def _short(text: str) -> str:
    """A server's message, on one line and short: the model may say it aloud."""
    return re.sub(r"\s+", " ", text).strip()[:200] or "no reason given"


def _describe(exc: BaseException) -> str:
    """An exception in a few words, fit for one log line (no secret, nothing unescaped)."""
    if isinstance(exc, BaseExceptionGroup) and exc.exceptions:
        return _describe(exc.exceptions[0])
    if isinstance(exc, FileNotFoundError):
        return f"command not found: {escape(str(exc.filename))[:100]}"
    if isinstance(exc, TimeoutError):
        return "no answer in time"
    message = escape(redact(str(exc)))[:200]
    return f"{type(exc).__name__}: {message}" if message else type(exc).__name__
