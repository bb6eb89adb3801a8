"""The talking side of ``FakeOpenAI``'s GPT-Live sessions: ``LiveAnswerer`` owns one aiortc peer
(``LiveCall``) per session, answers offers, ends sessions and finds them for the sideband."""

from __future__ import annotations

from typing import Any

from aiortc import RTCPeerConnection

from voicekiosk.fake.answering import Answering
from voicekiosk.fake.live_call import LiveCall
from voicekiosk.fake.live_rules import LiveRules
from voicekiosk.fake.voice import Script


class LiveAnswerer(Answering[LiveCall]):
    """Live sessions by id. Give ``FakeOpenAI`` the same ``rules`` (``live_rules``) as this.

    ``usage_every``: seconds between ``session.usage.updated`` (about a minute per the doc);
    ``start_delay``: from the channel opening to ``session.started`` (commands before it are refused);
    ``barge_in_ms``: how long the caller talks over the agent before it stops.
    """

    def __init__(
        self,
        *,
        rules: LiveRules | None = None,
        usage_every: float = 60.0,
        start_delay: float = 0.0,
        barge_in_ms: int = 400,
        loopback_only: bool = True,
        vad_threshold: float = 0.004,
        silence_ms: int = 500,
        script: Script | None = None,
    ) -> None:
        super().__init__(loopback_only=loopback_only, vad_threshold=vad_threshold, silence_ms=silence_ms, script=script)
        self.rules = rules or LiveRules()
        self.usage_every = usage_every
        self.start_delay = start_delay
        self.barge_in_ms = barge_in_ms

    def _new_call(self, call_id: str, pc: RTCPeerConnection, session: dict[str, Any]) -> LiveCall:
        return LiveCall(call_id, pc, session, self)

    async def _end(self, call: LiveCall) -> None:
        await call.end("remote_hangup")

    def sideband(self, session_id: str) -> LiveCall | None:
        """The open session ``/attach`` reaches, or None."""
        call = self.calls.get(session_id)
        return None if call is None or call.closed else call
