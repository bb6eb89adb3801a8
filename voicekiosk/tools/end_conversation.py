"""The built-in ``end_conversation`` tool: the agent says goodbye and the call ends (the page ends
it after the goodbye; the server does if the page does not, see ``web/caller.py``)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from voicekiosk.tools.base import Caller, ToolError

PARAMETERS: dict[str, Any] = {"type": "object", "properties": {}, "additionalProperties": False}


class EndConversationTool:
    """``end_conversation``: it ends the call it runs in."""

    name = "end_conversation"
    description = (
        "End the conversation when the visitor says goodbye or has nothing more to ask. Use it "
        "before your goodbye, without announcing it; then say a short goodbye: the call ends after "
        "it and the kiosk waits for the next visitor."
    )
    source = "built-in"
    timeout = 5.0

    def __init__(self) -> None:
        self.parameters: Mapping[str, Any] = PARAMETERS

    async def run(self, arguments: dict[str, Any]) -> str:
        raise ToolError("end_conversation works only during a call.")

    async def run_in(self, caller: Caller, arguments: dict[str, Any]) -> str:
        if caller.end():
            return "The call ends after your goodbye. Say a short goodbye now, and nothing else."
        return "No screen is connected to this call: it ends in a few seconds. Say a short goodbye now."
