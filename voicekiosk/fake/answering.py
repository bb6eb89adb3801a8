"""What every talking answerer (Realtime's ``AgentAnswerer``, Live's ``LiveAnswerer``) does the same
way: one aiortc peer per call, answering offers (loopback candidates only, if asked), the replies'
clips, and ending, dropping or making calls talk on request."""

from __future__ import annotations

import asyncio
from typing import Any, Generic, TypeVar

import numpy as np
from aiortc import RTCConfiguration, RTCPeerConnection, RTCSessionDescription

from voicekiosk.fake.peer import DropMode, PeerCall
from voicekiosk.fake.transport import patch_host_addresses, strip_candidates
from voicekiosk.fake.voice import CLIPS, RATE, Samples, Script, load_clip

KEEP_CLOSED = 50  # ended calls kept in ``calls`` for inspection
CallT = TypeVar("CallT", bound=PeerCall)


class Answering(Generic[CallT]):
    """Calls by id; a subclass makes each call (``_new_call``)."""

    def __init__(
        self,
        *,
        loopback_only: bool = True,
        vad_threshold: float = 0.004,
        silence_ms: int = 500,
        script: Script | None = None,
    ) -> None:
        self.loopback_only = loopback_only
        self.vad_threshold = vad_threshold
        self.silence_ms = silence_ms
        self.script = script or Script()
        self.calls: dict[str, CallT] = {}
        self.netguard_dropped = 0  # non-loopback candidates stripped from offers
        self._clips = [load_clip(CLIPS / name) for _, name in self.script.replies]
        self._closing: set[asyncio.Task[None]] = set()
        patch_host_addresses(loopback_only=loopback_only)

    def _new_call(self, call_id: str, pc: RTCPeerConnection, session: dict[str, Any]) -> CallT:
        raise NotImplementedError

    def reply(self, turn: int) -> tuple[str, Samples]:
        """Text and 48 kHz samples of the reply for the ``turn``-th response of a call."""
        i = turn % len(self._clips)
        return self.script.replies[i][0], self._clips[i]

    async def answer(self, call_id: str, offer: str, session: dict[str, Any]) -> str:
        if self.loopback_only:
            offer, dropped = strip_candidates(offer)
            self.netguard_dropped += dropped
        for ended in [i for i, c in self.calls.items() if c.closed][:-KEEP_CLOSED]:
            del self.calls[ended]
        pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))  # else aiortc uses Google's STUN
        call = self.calls[call_id] = self._new_call(call_id, pc, session)
        try:
            await pc.setRemoteDescription(RTCSessionDescription(sdp=offer, type="offer"))
            pc.addTrack(call.voice)
            await pc.setLocalDescription(await pc.createAnswer())
        except Exception:
            del self.calls[call_id]
            await call.close()
            raise
        return pc.localDescription.sdp

    async def hang_up(self, call_id: str) -> bool:
        if (call := self.calls.get(call_id)) is None or call.closed:
            return False
        await self._end(call)
        return True

    async def _end(self, call: CallT) -> None:
        """How ``hang_up`` ends a call."""
        await call.close()

    async def drop(self, call_id: str | None = None, mode: DropMode = "close") -> str | None:
        """Fault injection: end a call (None: the newest) abruptly. Returns its id, or None."""
        call = self.newest() if call_id is None else self.calls.get(call_id)
        if call is None or call.closed:
            return None
        await call.drop(mode)
        return call.call_id

    def newest(self) -> CallT | None:
        return next((c for c in reversed(self.calls.values()) if not c.closed), None)

    def say(self, seconds: float) -> str | None:
        """Benchmarks: make the newest call talk (its replies back to back) for ``seconds``."""
        call = self.newest()
        if call is None:
            return None
        clips = np.concatenate(self._clips)
        call.voice.play(np.tile(clips, int(seconds * RATE / len(clips)) + 1)[: int(seconds * RATE)])
        return call.call_id

    async def hang_up_all(self) -> int:
        """End every open call (benchmarks: pages that never hang up leave theirs behind)."""
        open_calls = [c for c in self.calls.values() if not c.closed]
        await asyncio.gather(*(c.close() for c in open_calls))
        return len(open_calls)

    def reap(self, call: PeerCall) -> None:
        """Close a call whose connection ended on its own."""
        task = asyncio.create_task(call.close())
        self._closing.add(task)
        task.add_done_callback(self._closing.discard)

    async def close(self) -> None:
        await asyncio.gather(*(call.close() for call in self.calls.values()))
        await asyncio.gather(*self._closing, return_exceptions=True)
