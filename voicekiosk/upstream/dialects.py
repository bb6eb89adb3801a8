"""How each engine's sideband speaks of function calls; the rest of a sideband (``sideband.py``) is
the same for both. A dialect says where to attach, which server events carry a call, end the
response it came in or end the session, and how the outputs are answered.

- Realtime (``openai-realtime.md`` §3, §5): top-level ``response.output_item.done`` and
  ``response.done``; each output a ``conversation.item.create``, then one ``response.create``.
- GPT-Live (``openai-live.md`` §3.3, §4.1): Responses events nested in ``response.event``
  envelopes; each output a ``response.item.create``, then ONE ``response.create`` after all of
  them; the calls of a ``response.failed`` are dropped.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal, Protocol

from yarl import URL

from voicekiosk.upstream.http import websocket_url

Kind = Literal["call", "finished", "failed", "progress", "ended", "usage"]
# How a Live backend response ends (§3.3 step 2): its calls are answered, or (failed) dropped.
LIVE_ENDS: dict[str, Kind] = {
    "response.completed": "finished",
    "response.incomplete": "finished",
    "response.failed": "failed",
}


@dataclass(frozen=True)
class Reading:
    """What a server event means to the sideband: a function ``call`` (its ``item``), the response
    that a batch of calls came in ``finished`` or ``failed`` (or is still in ``progress``), the
    session ``ended`` (``asked``: as a client asked, the page or this server), or news of ``usage``
    alone. ``batch``: the response (Realtime) or delegation (Live) the event belongs to; ``usage``:
    what OpenAI counted (Realtime: a response's tokens, or, ``of`` ``transcription``, a transcript's;
    Live: cumulative seconds)."""

    kind: Kind
    batch: str = ""
    item: dict[str, Any] | None = None
    usage: dict[str, Any] | None = None
    of: Literal["model", "transcription"] = "model"
    asked: bool = False


class Dialect(Protocol):
    """One engine's sideband wording."""

    name: str
    together: bool  # all pending outputs answered at once, with one request to go on (Live)

    def url(self, base_url: str, call_id: str) -> URL:
        """The call's sideband, from the configured REST base."""
        ...

    def read(self, event: dict[str, Any]) -> Reading | None:
        """What ``event`` means, or None if nothing the sideband acts on."""
        ...

    def answer(self, outputs: Sequence[tuple[str, str]]) -> list[dict[str, Any]]:
        """The events that give the model a finished batch's outputs (``(call_id, output)``) and
        let it go on."""
        ...

    def tell(self, rule: str) -> list[dict[str, Any]] | None:
        """The events that tell the model ``rule`` (the server's words) now, the last one having it
        answer (to be sent once no response is under way); None: this engine takes rules through
        ``Engine.instruct`` instead."""
        ...


def _output(call_id: str, output: str) -> dict[str, Any]:
    return {"type": "function_call_output", "call_id": call_id, "output": output}


def _dict(value: Any) -> dict[str, Any] | None:
    return value if isinstance(value, dict) else None


def _call(item: Any, batch: Any) -> Reading | None:
    """A completed function call item (the only kind read: §3.3 step 3)."""
    if isinstance(item, dict) and item.get("type") == "function_call" and item.get("status") == "completed":
        return Reading("call", batch if isinstance(batch, str) else "", item)
    return None


class RealtimeDialect:
    name = "realtime"
    together = False

    def url(self, base_url: str, call_id: str) -> URL:
        return websocket_url(base_url, "realtime").with_query(call_id=call_id)

    def read(self, event: dict[str, Any]) -> Reading | None:
        kind = event.get("type")
        if kind == "conversation.item.input_audio_transcription.completed":
            return Reading("usage", usage=_dict(event.get("usage")), of="transcription")  # billed apart
        if kind == "response.output_item.done":
            return _call(event.get("item"), event.get("response_id"))
        if kind == "response.done":
            response = event.get("response")
            response = response if isinstance(response, dict) else {}
            rid = response.get("id")
            return Reading("finished", rid if isinstance(rid, str) else "", usage=_dict(response.get("usage")))
        response = _dict(event.get("response")) or {}
        rid = event.get("response_id", response.get("id"))
        return Reading("progress", rid) if isinstance(rid, str) else None

    def answer(self, outputs: Sequence[tuple[str, str]]) -> list[dict[str, Any]]:
        items = [{"type": "conversation.item.create", "item": _output(*output)} for output in outputs]
        return [*items, {"type": "response.create"}]

    def tell(self, rule: str) -> list[dict[str, Any]]:
        """A system message (``openai-realtime.md``: items a client may add), then a response."""
        message = {"type": "message", "role": "system", "content": [{"type": "input_text", "text": rule}]}
        return [{"type": "conversation.item.create", "item": message}, {"type": "response.create"}]


class LiveDialect:
    name = "live"
    together = True

    def url(self, base_url: str, call_id: str) -> URL:
        # graceful_close: the session's end closes the socket cleanly, not as a drop (§4.1).
        url = websocket_url(base_url, "live", "sessions", call_id, "attach")
        return url.with_query(graceful_close="true")

    def read(self, event: dict[str, Any]) -> Reading | None:
        kind = event.get("type")
        if kind == "session.closed":  # §2.4: closed as asked (session.close, the REST hangup), or not
            asked = event.get("reason") in ("close_requested", "remote_hangup")
            return Reading("ended", usage=_dict(event.get("usage")), asked=asked)
        if kind == "session.usage.updated":
            return Reading("usage", usage=_dict(event.get("usage")))
        inner = event.get("event")
        if kind != "response.event" or not isinstance(inner, dict):
            return None
        batch = event.get("delegation_id")
        if inner.get("type") == "response.output_item.done":
            return _call(inner.get("item"), batch)
        if (end := LIVE_ENDS.get(str(inner.get("type")))) is not None:
            return Reading(end, batch if isinstance(batch, str) else "")
        return Reading("progress", batch) if isinstance(batch, str) else None

    def answer(self, outputs: Sequence[tuple[str, str]]) -> list[dict[str, Any]]:
        items = [{"type": "response.item.create", "item": _output(*output)} for output in outputs]
        return [*items, {"type": "response.create"}]

    def tell(self, rule: str) -> None:
        """Standing rules are appended and confirmed: ``LiveEngine.instruct``."""
        return None
