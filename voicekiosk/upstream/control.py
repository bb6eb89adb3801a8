"""``CallControl``: the server's sideband on every call it made (``--sdp server``), on either engine
(its ``Dialect``), opened when the call is made, closed when it ends (hang-up, orphan, sweep,
shutdown). It owns the WebSocket client they share."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence

import aiohttp

from voicekiosk.settings import Settings
from voicekiosk.tools.base import Caller
from voicekiosk.tools.runner import ToolRunner
from voicekiosk.upstream.dialects import Dialect, RealtimeDialect
from voicekiosk.upstream.http import websocket_client
from voicekiosk.upstream.sideband import BACKOFF, CallNotes, Sideband

log = logging.getLogger("voicekiosk.tools")


class CallControl:
    """Sidebands by call id (the registry's ``record.CallWatcher``); ``callers`` makes the ``Caller`` a
    call's tools act through (its page, its end); ``notes`` (set once the registry exists) keeps
    what OpenAI counted, the tools run and the events refused, by call. ``runner`` may hold no
    tools: a sideband is opened on every call all the same, for the server's own view of usage."""

    def __init__(
        self,
        settings: Settings,
        runner: ToolRunner,
        *,
        backoff: Sequence[float] = BACKOFF,
        callers: Callable[[str], Caller] | None = None,
        dialect: Dialect | None = None,
        notes: CallNotes | None = None,
    ) -> None:
        self.settings = settings
        self.runner = runner
        self.callers = callers
        self.dialect = dialect or RealtimeDialect()
        self.notes = notes
        self.sidebands: dict[str, Sideband] = {}
        self._backoff = backoff
        self._sockets: aiohttp.ClientSession | None = None
        self._closing: set[asyncio.Task[None]] = set()

    def started(self, call_id: str) -> None:
        """A call now exists upstream: open its sideband."""
        if call_id in self.sidebands or not self.settings.api_key:
            return
        url = self.dialect.url(self.settings.openai_base_url, call_id)
        open_within = self.settings.upstream_timeout
        caller = self.callers(call_id) if self.callers is not None else None
        sideband = Sideband(
            call_id,
            url,
            self._headers,
            self._client(),
            self.runner,
            self._backoff,
            open_within,
            caller=caller,
            dialect=self.dialect,
            notes=self.notes,
        )
        self.sidebands[call_id] = sideband
        sideband.start()

    def sideband(self, call_id: str) -> Sideband | None:
        """The call's sideband while it is open (the Live hang-up sends ``session.close`` on it)."""
        sideband = self.sidebands.get(call_id)
        return sideband if sideband is not None and sideband.is_open else None

    def ending(self, call_id: str) -> None:
        """The call is being hung up: its sideband stays for that (Live sends ``session.close`` on it)
        but is not reopened once it drops."""
        sideband = self.sidebands.get(call_id)
        if sideband is not None:
            sideband.ending = True

    def ended(self, call_id: str) -> None:
        """The call is over: close its sideband (``aclose`` waits for it)."""
        sideband = self.sidebands.pop(call_id, None)
        if sideband is not None:
            task = asyncio.get_running_loop().create_task(sideband.close())
            self._closing.add(task)
            task.add_done_callback(self._closing.discard)

    async def aclose(self) -> None:
        """Close every sideband and the client (after the registry has ended the calls)."""
        for call_id in list(self.sidebands):
            self.ended(call_id)
        await asyncio.gather(*self._closing, return_exceptions=True)
        if self._sockets is not None:
            await self._sockets.close()

    def _headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.settings.api_key}"}

    def _client(self) -> aiohttp.ClientSession:
        if self._sockets is None:
            timeout = aiohttp.ClientTimeout(total=None, connect=self.settings.upstream_timeout)
            self._sockets = websocket_client(self.settings, limit=64, timeout=timeout)
        return self._sockets
