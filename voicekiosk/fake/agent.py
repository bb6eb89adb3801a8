"""The talking side of ``FakeOpenAI``'s Realtime calls: ``AgentAnswerer`` owns one aiortc peer
(``AgentCall``) per call; what it shares with the Live peer is in ``answering``."""

from __future__ import annotations

from typing import Any

from aiortc import RTCPeerConnection

from voicekiosk.fake.answering import Answering
from voicekiosk.fake.call import AgentCall

__all__ = ["AgentAnswerer"]


class AgentAnswerer(Answering[AgentCall]):
    """The media side of ``FakeOpenAI``: a peer per call that listens, talks and can be interrupted."""

    def _new_call(self, call_id: str, pc: RTCPeerConnection, session: dict[str, Any]) -> AgentCall:
        return AgentCall(call_id, pc, session, self)

    def sideband(self, call_id: str) -> AgentCall | None:
        """The open call a sideband reaches, or None."""
        call = self.calls.get(call_id)
        return None if call is None or call.closed else call
