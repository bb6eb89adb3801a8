"""Function calling in the fake Realtime API (``openai-realtime.md`` §4.1, §5): the strict checks of a
session's ``tools`` and of the client events that answer a call, and the server events of a
function call the agent makes."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from voicekiosk.fake.schema import Check, Obj, Refusal, array, boolean, either, nullable, one_of, string, tagged
from voicekiosk.fake.wire import new_id, usage


def any_object(value: Any, param: str) -> None:
    if not isinstance(value, dict):
        raise Refusal(400, "invalid_type", f"Invalid type for '{param}': expected an object.", param)


def _schema(value: Any, param: str) -> None:
    """A function's ``parameters``: a JSON schema of an object."""
    any_object(value, param)
    if value.get("type") != "object":
        message = f"Invalid schema for '{param}': type must be 'object'."
        raise Refusal(400, "invalid_function_parameters", message, param)


def _strings(value: Any, param: str) -> None:
    """An object of string values (HTTP headers)."""
    any_object(value, param)
    for key, item in value.items():
        string()(item, f"{param}.{key}")


def _closed(fields: dict[str, Check], *required: str) -> Obj:
    return Obj(fields, frozenset(required))


FUNCTION = _closed(
    {
        "type": one_of("function"),
        "name": string(min_chars=1, max_chars=64),
        "description": string(),
        "parameters": _schema,
    },
    "type",
    "name",
)
# An MCP server OpenAI reaches itself (§4.1): a URL, a connector or a tunnel, and what it may call.
_FILTER = _closed({"tool_names": array(string(), max_items=128), "read_only": boolean})
_MCP_FIELDS = _closed(
    {
        "type": one_of("mcp"),
        "server_label": string(min_chars=1),
        "server_url": string(min_chars=1),
        "connector_id": string(min_chars=1),
        "tunnel_id": string(min_chars=1),
        "authorization": string(),
        "headers": nullable(_strings),
        "allowed_tools": nullable(either(array(string(), max_items=128), _FILTER)),
        "require_approval": nullable(either(one_of("always", "never"), _closed({"always": _FILTER, "never": _FILTER}))),
        "server_description": string(),
    },
    "type",
    "server_label",
)
SOURCES = ("server_url", "connector_id", "tunnel_id")


def _mcp(value: Any, param: str) -> None:
    _MCP_FIELDS(value, param)
    if sum(source in value for source in SOURCES) != 1:
        message = f"Invalid '{param}': give exactly one of {', '.join(SOURCES)}."
        raise Refusal(400, "invalid_value", message, f"{param}.server_url")


TOOLS = array(tagged("type", {"function": FUNCTION, "mcp": _mcp}), max_items=128)
TOOL_CHOICE = either(
    one_of("auto", "none", "required"),
    tagged(
        "type",
        {
            "function": _closed({"type": one_of("function"), "name": string()}, "type", "name"),
            "mcp": _closed({"type": one_of("mcp"), "server_label": string(), "name": string()}, "type", "server_label"),
        },
    ),
)
OUTPUT = _closed(
    {"type": one_of("function_call_output"), "call_id": string(min_chars=1), "output": string(), "id": string()},
    "type",
    "call_id",
    "output",
)
RESPONSE = _closed(
    {
        "instructions": string(),
        "output_modalities": array(one_of("audio", "text"), max_items=1),
        "conversation": one_of("auto", "none"),
        "metadata": any_object,
        "tool_choice": TOOL_CHOICE,
        "tools": TOOLS,
    }
)


def tools_refusal(session: dict[str, Any]) -> Refusal | None:
    """OpenAI's refusal of a session's ``tools`` or ``tool_choice`` (its code and words), or None."""
    try:
        if "tools" in session:
            TOOLS(session["tools"], "session.tools")
        if "tool_choice" in session:
            TOOL_CHOICE(session["tool_choice"], "session.tool_choice")
    except Refusal as refusal:
        return refusal
    return None


def check_tools(session: dict[str, Any]) -> str | None:
    """The param of a session's ``tools`` or ``tool_choice`` OpenAI would refuse, or None."""
    refusal = tools_refusal(session)
    return None if refusal is None else refusal.param or "session.tools"


def declared(session: dict[str, Any], name: str) -> dict[str, Any] | None:
    """The session's function tool called ``name``, if the model may call it."""
    if session.get("tool_choice") == "none":
        return None
    return next((t for t in session.get("tools", []) if t.get("type") == "function" and t.get("name") == name), None)


@dataclass
class FunctionCall:
    """One call the agent made: what it asked, and the output it was given (None: not yet)."""

    name: str
    arguments: str
    turn: int
    call_id: str = field(default_factory=lambda: new_id("call"))
    item_id: str = field(default_factory=lambda: new_id("item"))
    output: str | None = None
    answered: bool = False  # a response has spoken the output

    def item(self, status: str, arguments: str) -> dict[str, Any]:
        item = {"id": self.item_id, "object": "realtime.item", "type": "function_call", "status": status}
        return item | {"name": self.name, "call_id": self.call_id, "arguments": arguments}

    def events(self, response: dict[str, Any], index: int = 0) -> list[tuple[str, dict[str, Any]]]:
        """This call's events as output ``index`` of a response (``response``: its in-progress object)."""
        rid = response["id"]
        added = {"response_id": rid, "output_index": index, "item": self.item("in_progress", "")}
        where = {"response_id": rid, "item_id": self.item_id, "output_index": index, "call_id": self.call_id}
        done = self.item("completed", self.arguments)
        return [
            ("response.output_item.added", added),
            ("response.function_call_arguments.delta", {**where, "delta": self.arguments}),
            ("response.function_call_arguments.done", {**where, "name": self.name, "arguments": self.arguments}),
            ("response.output_item.done", {"response_id": rid, "output_index": index, "item": done}),
        ]

    def output_item(self) -> dict[str, Any]:
        item = {"id": new_id("item"), "object": "realtime.item", "type": "function_call_output", "status": "completed"}
        return item | {"call_id": self.call_id, "output": self.output}


def calling(calls: list[FunctionCall], response: dict[str, Any], heard_s: float) -> list[tuple[str, dict[str, Any]]]:
    """A response (``response``: its in-progress object) that only calls functions: its events, the
    closing ``response.done`` last."""
    events: list[tuple[str, dict[str, Any]]] = [("response.created", {"response": response})]
    for index, call in enumerate(calls):
        events += call.events(response, index)
    output = [call.item("completed", call.arguments) for call in calls]
    spent = usage(heard_s, sum(len(call.arguments.split()) for call in calls), 0.0, calls[0].turn)
    return [
        *events,
        ("response.done", {"response": response | {"status": "completed", "output": output, "usage": spent}}),
    ]
