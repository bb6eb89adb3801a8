"""What every call of a talking fake (Realtime's ``AgentCall``, Live's ``LiveCall``) does the same way:
its aiortc peer, the ``oai-events`` channel and its JSON, the event log, the VAD fed from the
caller's track, task bookkeeping, and closing, dropping or blackholing the call."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections.abc import Callable, Coroutine
from typing import Any, Literal

from aiortc import RTCDataChannel, RTCPeerConnection
from aiortc.mediastreams import MediaStreamError, MediaStreamTrack
from av import AudioFrame

from voicekiosk.fake.transport import cut_transports, flush
from voicekiosk.fake.voice import Edge, Vad, VoiceTrack, level
from voicekiosk.fake.wire import new_id

log = logging.getLogger("voicekiosk.fake.agent")

DropMode = Literal["close", "error", "blackhole"]


def parse_event(message: str | bytes) -> tuple[dict[str, Any] | None, str | None]:
    """A client event and its type, or None for what is not a JSON object with a string ``type``."""
    try:
        event = json.loads(message)
    except ValueError:
        return None, None
    kind = event.get("type") if isinstance(event, dict) else None
    return (event, kind) if isinstance(kind, str) else (None, None)


class PeerCall:
    """One call's plumbing; a subclass says what it answers (``_handle``), does when the channel
    opens (``_opened``) and hears (``_on_audio``)."""

    def __init__(self, call_id: str, pc: RTCPeerConnection, vad: Vad, reap: Callable[[Any], None]) -> None:
        self.call_id = call_id
        self.pc = pc
        self.voice = VoiceTrack()
        self.vad = vad
        self.events: list[tuple[float, str, str]] = []  # (monotonic, "in" | "out", event type)
        self.barge_ins: list[float] = []  # when the agent's audio was cut because the caller spoke
        self.channel: RTCDataChannel | None = None
        self.closed = False
        self._reap_call = reap
        self._tasks: set[asyncio.Task[None]] = set()
        self._blackholed = False
        pc.on("datachannel", self._on_datachannel)
        pc.on("track", self._on_track)
        pc.on("connectionstatechange", self._on_state)

    async def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        self.voice.stop()
        await self.pc.close()

    async def drop(self, mode: DropMode) -> None:
        if mode == "blackhole":
            self._blackhole()
            return
        if mode == "error":
            self._fatal_error()
            await flush(self.pc, self.channel)
        await self.close()

    def send(self, kind: str, **fields: Any) -> None:
        self._deliver(kind, json.dumps({"type": kind, "event_id": new_id("event"), **fields}))

    # -- for subclasses ---------------------------------------------------------------------

    def _deliver(self, kind: str, text: str) -> None:
        """Put one server event on the channel (if it is open and the call not blackholed)."""
        if self._blackholed or self.channel is None or self.channel.readyState != "open":
            return
        self.channel.send(text)
        self.events.append((time.monotonic(), "out", kind))

    def _opened(self) -> None:
        """The channel is open."""

    def _handle(self, kind: str, event: dict[str, Any] | None) -> None:
        """A message on the channel (``event`` None: not a JSON object with a type)."""

    def _on_audio(self, edge: Edge) -> None:
        """One frame of the caller's audio went through the VAD (``edge``: where speech started or stopped)."""

    def _fatal_error(self) -> None:
        """``drop(mode="error")``: the error event that ends the call."""

    def _spawn(self, coro: Coroutine[Any, Any, None]) -> asyncio.Task[None]:
        task = asyncio.create_task(coro)
        if self.closed:
            task.cancel()
        self._tasks.add(task)
        task.add_done_callback(self._reap)
        return task

    # -- plumbing ---------------------------------------------------------------------------

    def _reap(self, task: asyncio.Task[None]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and (exc := task.exception()):
            log.error("fake agent task failed on %s", self.call_id, exc_info=exc)

    def _on_state(self) -> None:
        if self.pc.connectionState in ("failed", "closed") and not self.closed:
            self._reap_call(self)

    def _blackhole(self) -> None:
        """Go quiet on the wire: no media, no data, no ICE or DTLS, and no goodbye either."""
        self._blackholed = True
        self.voice.stop()
        cut_transports(self.pc)

    def _on_datachannel(self, channel: RTCDataChannel) -> None:
        if channel.label != "oai-events":
            return
        self.channel = channel
        channel.on("message", self._on_message)
        if channel.readyState == "open":
            self._opened()
        else:
            channel.on("open", self._opened)

    def _on_message(self, message: str | bytes) -> None:
        event, kind = parse_event(message)
        self.events.append((time.monotonic(), "in", kind or "invalid"))
        self._handle(kind or "invalid", event)

    def _on_track(self, track: MediaStreamTrack) -> None:
        if track.kind == "audio":
            self._spawn(self._listen(track))

    async def _listen(self, track: MediaStreamTrack) -> None:
        with contextlib.suppress(MediaStreamError):
            while True:
                frame = await track.recv()
                if isinstance(frame, AudioFrame):
                    ms = round(1000 * frame.samples / frame.sample_rate)
                    self._on_audio(self.vad.feed(level(frame.to_ndarray()), ms))
