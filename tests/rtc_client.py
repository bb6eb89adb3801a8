"""A browser stand-in for the fake agent's tests: an aiortc peer with a microphone track, the
``oai-events`` channel, and a log of the events and audio that came back."""

from __future__ import annotations

import asyncio
import json
import re
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from aiortc import RTCConfiguration, RTCPeerConnection, RTCSessionDescription
from aiortc.mediastreams import MediaStreamError, MediaStreamTrack
from av import AudioFrame

from voicekiosk.fake.transport import patch_host_addresses
from voicekiosk.fake.voice import VoiceTrack, level, load_clip

LOUD = 0.01  # RMS of received agent speech is ~0.1; Opus-coded silence is ~0


class Client:
    """A browser stand-in: mic track, ``oai-events`` channel, and a log of what came back."""

    def __init__(self, mic: Path | None = None) -> None:
        patch_host_addresses(loopback_only=True)
        self.pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
        self.mic = VoiceTrack()
        if mic is not None:
            self.mic.play(load_clip(mic))
        self.pc.addTrack(self.mic)
        self.channel = self.pc.createDataChannel("oai-events")
        self.events: list[tuple[float, dict[str, Any]]] = []
        self.audio: list[tuple[float, float]] = []  # (monotonic, RMS) of each received frame
        self.channel_closed = asyncio.Event()
        self.call_id = ""
        self._tasks: list[asyncio.Task[None]] = []
        self._arrived = asyncio.Event()  # set by every event that comes in
        self.channel.on("message", self._on_message)
        self.channel.on("close", self.channel_closed.set)
        self.pc.on("track", lambda track: self._tasks.append(asyncio.create_task(self._record(track))))

    async def connect(self, post: Callable[[str], Awaitable[str]], *, no_candidates: bool = False) -> None:
        await self.pc.setLocalDescription(await self.pc.createOffer())
        offer = self.pc.localDescription.sdp
        if no_candidates:  # as a page that posts its offer before ICE gathering
            offer = re.sub(r"a=(candidate:.*|end-of-candidates)\r\n", "", offer)
            assert "a=candidate" not in offer
        await self.pc.setRemoteDescription(RTCSessionDescription(sdp=await post(offer), type="answer"))

    def _on_message(self, message: str) -> None:
        self.events.append((time.monotonic(), json.loads(message)))
        self._arrived.set()

    async def _record(self, track: MediaStreamTrack) -> None:
        try:
            while True:
                frame = await track.recv()
                assert isinstance(frame, AudioFrame)
                self.audio.append((time.monotonic(), level(frame.to_ndarray())))
        except MediaStreamError:
            pass

    def send(self, event: dict[str, Any] | str) -> None:
        self.channel.send(event if isinstance(event, str) else json.dumps(event))

    def of(self, kind: str) -> list[dict[str, Any]]:
        return [e for _, e in self.events if e["type"] == kind]

    def at(self, kind: str, n: int = 1) -> float:
        """When the n-th event of ``kind`` arrived."""
        return [t for t, e in self.events if e["type"] == kind][n - 1]

    def index(self, kind: str, n: int = 1) -> int:
        return [i for i, (_, e) in enumerate(self.events) if e["type"] == kind][n - 1]

    async def wait_for(self, kind: str, n: int = 1, timeout: float = 5.0) -> dict[str, Any]:
        """The n-th event of ``kind``: looked for again each time an event arrives."""
        deadline = time.monotonic() + timeout
        while len(self.of(kind)) < n:
            self._arrived.clear()
            try:
                await asyncio.wait_for(self._arrived.wait(), deadline - time.monotonic())
            except TimeoutError:
                seen = [e["type"] for _, e in self.events]
                raise AssertionError(f"no {kind} #{n} within {timeout} s; got {seen}") from None
        return self.of(kind)[n - 1]

    def heard_since(self, kind: str, frames: int) -> bool:
        """At least ``frames`` loud frames have arrived since the (first) event ``kind``."""
        return self.loud_frames(self.at(kind), time.monotonic()) >= frames

    def loud_frames(self, start: float, end: float) -> int:
        return sum(1 for t, rms in self.audio if start <= t <= end and rms > LOUD)

    async def close(self) -> None:
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self.mic.stop()
        await self.pc.close()


async def join_through(client: Any, page: Client, ready: str) -> str:
    """``page`` posts its offer to our app's ``/api/call`` (``client``: an aiohttp TestClient),
    joins the call and waits for the engine's ``ready`` event; the call's id."""
    from tests.helpers import SDP, call_id, within

    ids: list[str] = []

    async def post(offer: str) -> str:
        response = await client.post("/api/call", data=offer, headers=SDP)
        assert response.status == 201, await response.text()
        ids.append(call_id(response))
        return str(await response.text())

    await within(page.connect(post), 10, "the page to join")
    await page.wait_for(ready)
    return ids[0]
