"""The Realtime client events the fake checks field by field, closed at every level as OpenAI's are
(``openai-realtime.md`` §4.1, §5.2): a function's output or a message as a conversation item, a
response, and a session update (the GA session object, every field optional)."""

from __future__ import annotations

from typing import Any

from voicekiosk.fake.functions import OUTPUT, RESPONSE, TOOL_CHOICE, TOOLS, any_object
from voicekiosk.fake.schema import Check, Obj, array, boolean, either, nullable, number, one_of, string, tagged
from voicekiosk.fake.wire import new_id


def _closed(fields: dict[str, Check], *required: str) -> Obj:
    return Obj(fields, frozenset(required))


# A message item: the page tells the model something (a system message: the visitor's language).
_TEXT = _closed({"type": one_of("input_text"), "text": string()}, "type", "text")
MESSAGE = _closed(
    {
        "type": one_of("message"),
        "id": string(),
        "role": one_of("system", "user", "assistant"),
        "content": array(tagged("type", {"input_text": _TEXT}), max_items=32),
    },
    "type",
    "role",
    "content",
)
_FORMAT = tagged(
    "type",
    {
        "audio/pcm": _closed({"type": one_of("audio/pcm"), "rate": one_of(24000)}, "type"),
        "audio/pcmu": _closed({"type": one_of("audio/pcmu")}, "type"),
        "audio/pcma": _closed({"type": one_of("audio/pcma")}, "type"),
    },
)
# audio.input.transcription: null (off) or {model, language?, ...}; language an ISO-639-1 code.
TRANSCRIPTION = nullable(
    _closed(
        {
            "model": string(min_chars=1),
            "language": string(min_chars=2, max_chars=3),
            "languages": array(string(min_chars=2, max_chars=3), max_items=16),
            "keywords": array(string(), max_items=100),
            "prompt": string(),
            "delay": string(),
        },
        "model",
    )
)
_AUDIO = _closed(
    {
        "input": _closed(
            {
                "format": _FORMAT,
                "transcription": TRANSCRIPTION,
                "noise_reduction": nullable(any_object),
                "turn_detection": nullable(any_object),
            }
        ),
        "output": _closed({"format": _FORMAT, "voice": string(), "speed": number(minimum=0.25)}),
    }
)
SESSION_UPDATE = _closed(
    {
        "type": one_of("realtime"),
        "model": string(),
        "instructions": string(),
        "output_modalities": array(one_of("audio", "text"), max_items=1),
        "audio": _AUDIO,
        "tools": TOOLS,
        "tool_choice": TOOL_CHOICE,
        "parallel_tool_calls": boolean,
        "reasoning": any_object,
        "max_output_tokens": either(one_of("inf"), number(minimum=1, integer=True)),
        "tracing": nullable(either(one_of("auto"), any_object)),
        "truncation": either(one_of("auto", "disabled"), any_object),
        "prompt": nullable(any_object),
        "include": array(string(), max_items=4),
    }
)


def added_item(message: dict[str, Any]) -> dict[str, Any]:
    """A message item as ``conversation.item.added`` shows it."""
    return {"id": new_id("item"), "object": "realtime.item", "status": "completed"} | message


CLIENT_EVENTS: dict[str, Obj] = {
    "conversation.item.create": _closed(
        {
            "type": string(),
            "event_id": string(),
            "previous_item_id": string(),
            "item": tagged("type", {"function_call_output": OUTPUT, "message": MESSAGE}),
        },
        "type",
        "item",
    ),
    "response.create": _closed({"type": string(), "event_id": string(), "response": RESPONSE}, "type"),
    "session.update": _closed({"type": string(), "event_id": string(), "session": SESSION_UPDATE}, "type", "session"),
}
