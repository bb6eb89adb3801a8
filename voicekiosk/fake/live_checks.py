"""How the Live fake checks what it is sent, as ``openai-live.md`` §1.2, §2.4 and §3.2 give it: the
create body (a closed ``session`` at every level), the SDP offer as a pion parser reads it, and the
commands of the data channel and the sideband."""

from __future__ import annotations

from typing import Any

from voicekiosk.fake.live_functions import OUTPUT_ITEM
from voicekiosk.fake.live_rules import LiveRules
from voicekiosk.fake.schema import (
    Check,
    Obj,
    Refusal,
    array,
    boolean,
    either,
    invalid,
    nullable,
    number,
    one_of,
    string,
    tagged,
    tokens,
)

# §2.4: what a browser channel may send (session.start and input_audio.append are WebSocket-only).
CHANNEL_EVENTS = (
    "session.update",
    "session.input_audio.mute",
    "session.input_audio.unmute",
    "session.instructions.append",
    "session.thinking.append",
    "session.commentary.append",
    "response.item.create",
    "response.create",
    "session.close",
)
WEBSOCKET_ONLY = ("session.start", "session.input_audio.append")
APPENDS = ("session.instructions.append", "session.thinking.append", "session.commentary.append")
MAX_INPUT_TOKENS = 8192


def _closed(fields: dict[str, Check], *required: str) -> Obj:
    return Obj(fields, frozenset(required))


def _responses(rules: LiveRules) -> Obj:
    """``delegation.responses`` (§3.2)."""
    function = _closed(
        {
            "type": one_of("function"),
            "name": string(min_chars=1, max_chars=64),
            "description": string(),
            "parameters": _any_object,
            "strict": boolean,
        },
        "type",
        "name",
    )
    web_search = _closed(
        {"type": one_of("web_search"), "filters": _any_object, "search_context_size": one_of("low", "medium", "high")}
        | {"user_location": _any_object},
        "type",
    )
    tools = {"function": function, "web_search": web_search}
    choice = tagged(
        "type",
        {
            "function": _closed({"type": one_of("function"), "name": string()}, "type", "name"),
            "mcp": _closed({"type": one_of("mcp"), "server_label": string(), "name": string()}, "type", "server_label"),
        },
    )
    return _closed(
        {
            "model": string(min_chars=1),
            "instructions": string(),
            "max_output_tokens": number(minimum=16, integer=True),
            "parallel_tool_calls": boolean,
            "reasoning": _closed(
                {
                    "effort": one_of("none", "minimal", "low", "medium", "high", "xhigh"),
                    "summary": one_of("concise", "detailed", "auto"),
                }
            ),
            "service_tier": one_of("auto", "default", "flex", "priority"),
            "text": _closed({"verbosity": one_of("low", "medium", "high")}),
            "tool_choice": either(one_of("auto", "none", "required"), choice),
            "tools": array(tagged("type", {t: tools[t] for t in rules.tool_types if t in tools}), max_items=128),
        },
        "model",
    )


def delegation(rules: LiveRules) -> Check:
    return nullable(
        tagged(
            "type",
            {
                "client": _closed({"type": one_of("client")}, "type"),
                "responses": _closed(
                    {"type": one_of("responses"), "responses": _responses(rules)}, "type", "responses"
                ),
            },
        )
    )


def _any_object(value: Any, param: str) -> None:
    if not isinstance(value, dict):
        raise Refusal(400, "invalid_type", f"Invalid type for '{param}': expected an object.", param)


def _message(value: Any, param: str) -> None:
    """One startup ``input`` message: a role (no ``system``) and exactly one text part."""
    fields = {"type": one_of("message"), "role": one_of("developer", "user", "assistant"), "content": _one_part}
    _closed(fields, "type", "role", "content")(value, param)
    parts = ("input_text", "output_text", "text") if value["role"] == "assistant" else ("input_text",)
    _closed({"type": one_of(*parts), "text": string()}, "type", "text")(value["content"][0], f"{param}.content[0]")


def _one_part(value: Any, param: str) -> None:
    if not isinstance(value, list) or len(value) != 1:
        raise Refusal(400, "invalid_value", f"Invalid '{param}': expected exactly one text part.", param)


def _voice(rules: LiveRules) -> Check:
    def check(value: Any, param: str) -> None:
        if isinstance(value, dict):
            _closed({"id": string(min_chars=1, max_chars=128)}, "id")(value, param)
        elif not isinstance(value, str) or value not in rules.voices:
            message = f"Voice {value!r} is not available for this model."
            raise Refusal(rules.unknown_voice_status, "forbidden", message, param)

    return check


def _no_audio_format(value: Any, param: str) -> None:
    message = f"Unsupported parameter: '{param}' is not supported for WebRTC sessions; the codec is negotiated."
    raise Refusal(400, "unsupported_parameter", message, param)


def session_schema(rules: LiveRules) -> Obj:
    """``session`` of ``POST /v1/live/sessions`` (§1.2), closed at every level."""
    events = either(one_of("all"), array(one_of(*CHANNEL_EVENTS), max_items=256))
    server_event = _closed({"type": string(min_chars=1), "response_event": string(min_chars=1)}, "type")
    fields: dict[str, Check] = {
        "model": string(min_chars=1),
        "instructions": string(max_tokens=16384),
        "audio": _closed({"output": _closed({"voice": _voice(rules)}), "format": _no_audio_format}),
        "delegation": delegation(rules),
        "input": array(_message, max_items=128),
        "client": _closed(
            {
                "data_channel": _closed(
                    {
                        "allowed_client_events": events,
                        "allowed_server_events": either(one_of("all"), array(server_event, max_items=256)),
                    }
                )
            }
        ),
        "store": boolean,
    }
    standby: dict[str, Check] = {
        "idle_timeout_s": number(minimum=1, integer=True),
        "wake_policy": _closed({"type": one_of("speech")}, "type"),
    }
    fields |= {name: standby.get(name, _any_object) for name in rules.standby_fields}
    fields |= {name: _any_object for name in rules.extra_session_fields}
    return _closed(fields, "model")


def check_create(body: Any, rules: LiveRules) -> tuple[dict[str, Any], str]:
    """The session and offer of a create body, or the Refusal OpenAI would answer with."""
    transport = _closed({"type": one_of("webrtc"), "sdp": string()}, "type", "sdp")
    _closed({"session": session_schema(rules), "transport": transport}, "session", "transport")(body, "")
    session: dict[str, Any] = body["session"]
    if session["model"] not in rules.models:
        message = f"The model `{session['model']}` does not exist or you do not have access to it."
        raise Refusal(404, "model_not_found", message, "session.model")
    if sum(tokens(m["content"][0]["text"]) for m in session.get("input", [])) > MAX_INPUT_TOKENS:
        message = f"Invalid 'session.input': more than {MAX_INPUT_TOKENS} tokens of startup history."
        raise Refusal(400, "string_above_max_length", message, "session.input")
    check_sdp(body["transport"]["sdp"], rules)
    return session, body["transport"]["sdp"]


def check_sdp(sdp: str, rules: LiveRules) -> None:
    """Refuse an offer as pion does: every line must end in a newline (a stripped one reads EOF)."""
    if not sdp.startswith("v=0"):
        raise Refusal(400, rules.sdp_error_code, "failed to unmarshal SDP: invalid syntax", "transport.sdp")
    if not sdp.endswith("\n"):
        raise Refusal(400, rules.sdp_error_code, "failed to unmarshal SDP: EOF", "transport.sdp")


def check_event(
    event: dict[str, Any], rules: LiveRules, *, started: bool, allowed: Any, delegation_type: str, delegations: set[str]
) -> None:
    """Refuse a client event as a Live session would (§2.4): WebSocket-only or unknown types, any command
    before ``session.started``, what ``allowed`` (``allowed_client_events``; "all" on the sideband)
    leaves out, then the command's own fields."""
    kind = event["type"]
    if kind in WEBSOCKET_ONLY:
        raise Refusal(400, rules.websocket_only_code, f"'{kind}' is only for WebSocket sessions.", "type")
    if kind not in CHANNEL_EVENTS:
        message = f"Invalid value: '{kind}'. Supported values are: {', '.join(CHANNEL_EVENTS)}."
        raise Refusal(400, rules.unknown_event_code, message, "type")
    if not started:
        raise Refusal(400, rules.not_started_code, "Wait for session.started before sending commands.", "type")
    if allowed != "all" and kind not in allowed:
        raise Refusal(403, rules.not_allowed_code, f"'{kind}' is not allowed on this data channel.", "type")
    check_command(event, rules, delegation_type=delegation_type, delegations=delegations)


def check_command(event: dict[str, Any], rules: LiveRules, *, delegation_type: str, delegations: set[str]) -> None:
    """Refuse a command whose fields are wrong: closed objects, the appends' rules, delegation mode."""
    kind = event["type"]
    base: dict[str, Check] = {"type": one_of(kind), "event_id": string(min_chars=1)}
    if kind in APPENDS:
        append = base | {"content": string(max_tokens=500), "delegation_id": nullable(string())}
        _closed(append, "content", "delegation_id")(event, "")  # delegation_id: required, nullable
        given = event["delegation_id"]
        if given is not None and (delegation_type == "responses" or given not in delegations):
            raise invalid("delegation_id", given)
    elif kind == "session.update":
        _closed(base | {"session": _closed({"delegation": delegation(rules)}, "delegation")}, "session")(event, "")
        update = event["session"]["delegation"]
        if update is None:  # null selects client delegation at start only: an update must say what
            raise invalid("session.delegation", None)
        if update.get("type", "client") != delegation_type:
            message = "Cannot change 'session.delegation.type' after the session has started."
            raise Refusal(400, "immutable_field_update", message, "session.delegation.type")
    elif kind == "response.item.create":
        _closed(base | {"item": OUTPUT_ITEM}, "item")(event, "")
    else:
        _closed(base)(event, "")
    if kind.startswith("response.") and delegation_type != "responses":
        message = f"'{kind}' needs Responses delegation; this session delegates to the client."
        raise Refusal(400, rules.wrong_delegation_code, message, "type")
