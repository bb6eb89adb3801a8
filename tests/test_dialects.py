"""What each engine's sideband dialect reads of OpenAI's events and answers with (``upstream/dialects.py``)."""

from __future__ import annotations

from voicekiosk.upstream.dialects import LiveDialect, Reading, RealtimeDialect

CALL = {"type": "function_call", "status": "completed", "call_id": "call_1", "name": "get_hours", "arguments": "{}"}
BASE = "https://api.openai.com/v1"


def envelope(event: dict[str, object], delegation: str = "item_delegation_1") -> dict[str, object]:
    return {"type": "response.event", "delegation_id": delegation, "event": event}


def test_live_reads_calls_only_from_completed_items_nested_in_response_events() -> None:
    live = LiveDialect()
    done = {"type": "response.output_item.done", "output_index": 0, "item": CALL}
    assert live.read(envelope(done)) == Reading("call", "item_delegation_1", CALL)
    assert live.read(done) is None  # not at the top level: that is Realtime's shape
    assert live.read(envelope(done | {"item": CALL | {"status": "in_progress"}})) is None
    assert live.read(envelope(done | {"item": {"type": "reasoning", "status": "completed"}})) is None
    assert live.read(envelope({"type": "response.completed", "response": {"output": []}})) == Reading(
        "finished", "item_delegation_1"
    )
    assert live.read(envelope({"type": "response.failed"}, "d2")) == Reading("failed", "d2")
    assert live.read({"type": "session.closed", "reason": "close_requested"}) == Reading("ended", asked=True)
    assert live.read({"type": "session.closed", "reason": "remote_hangup"}) == Reading("ended", asked=True)
    assert live.read({"type": "session.closed", "reason": "expired"}) == Reading("ended")  # OpenAI's own end
    assert live.read({"type": "response.event", "event": "nonsense"}) is None
    # Any other event of a delegation shows its response going on (its end not missed in a drop).
    assert live.read(envelope({"type": "response.created"})) == Reading("progress", "item_delegation_1")
    assert LiveDialect.together  # one response.create after ALL pending outputs (§3.3 step 4)


def test_live_answers_each_output_then_one_response_create() -> None:
    events = LiveDialect().answer([("call_1", "a"), ("call_2", "b")])
    assert events == [
        {"type": "response.item.create", "item": {"type": "function_call_output", "call_id": "call_1", "output": "a"}},
        {"type": "response.item.create", "item": {"type": "function_call_output", "call_id": "call_2", "output": "b"}},
        {"type": "response.create"},
    ]
    url = LiveDialect().url(BASE, "live_abc")
    assert str(url) == "wss://api.openai.com/v1/live/sessions/live_abc/attach?graceful_close=true"


def test_realtime_reads_top_level_events_and_answers_with_conversation_items() -> None:
    realtime = RealtimeDialect()
    done = {"type": "response.output_item.done", "response_id": "resp_1", "item": CALL}
    assert realtime.read(done) == Reading("call", "resp_1", CALL)
    assert realtime.read({"type": "response.done", "response": {"id": "resp_1"}}) == Reading("finished", "resp_1")
    assert realtime.read(envelope(done)) is None
    delta = {"type": "response.output_audio_transcript.delta", "response_id": "resp_2", "delta": "Hi"}
    assert realtime.read(delta) == Reading("progress", "resp_2")
    assert realtime.read({"type": "response.created", "response": {"id": "resp_3"}}) == Reading("progress", "resp_3")
    assert realtime.read({"type": "session.updated"}) is None and not realtime.together
    [item, go_on] = realtime.answer([("call_1", "a")])
    assert item["type"] == "conversation.item.create" and go_on == {"type": "response.create"}
    assert str(realtime.url(BASE, "rtc_1")) == "wss://api.openai.com/v1/realtime?call_id=rtc_1"
