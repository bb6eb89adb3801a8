"""Function calls under Responses delegation in a fake GPT-Live session (``openai-live.md`` §3.3):
when the script asks for a declared function on a user turn, the session delegates to its backend,
whose ``response.event`` envelopes carry the call (``response.output_item.done``, then a
``response.completed`` with its ``output`` trimmed to nothing). It takes the outputs only as
``response.item.create`` of a ``function_call_output`` for a pending call, and ``response.create``
only once every pending call has one; then the voice speaks the result."""

from __future__ import annotations

import json
from typing import Any, Protocol

from voicekiosk.fake.functions import FunctionCall
from voicekiosk.fake.schema import Obj, Refusal, one_of, string, tagged
from voicekiosk.fake.voice import Script
from voicekiosk.fake.wire import new_id

# ``response.item.create``'s item, closed: the only input item the fake's backend takes.
OUTPUT_ITEM = tagged(
    "type",
    {
        "function_call_output": Obj(
            {"type": one_of("function_call_output"), "call_id": string(min_chars=1), "output": string()}
            | {"id": string(min_chars=1)},
            frozenset({"type", "call_id", "output"}),
        )
    },
)


class Session(Protocol):
    """What the functions use of their ``LiveCall``."""

    session: dict[str, Any]

    def delegate(self, response_id: str | None = None) -> str: ...

    def send(self, kind: str, **fields: Any) -> None: ...


def declared(session: dict[str, Any], name: str) -> dict[str, Any] | None:
    """The backend's function tool called ``name``, if the session delegates to one that may call it."""
    delegation = session.get("delegation") or {}
    backend = delegation.get("responses") if delegation.get("type") == "responses" else None
    if not isinstance(backend, dict) or backend.get("tool_choice") == "none":
        return None
    tools = backend.get("tools", [])
    return next((t for t in tools if t.get("type") == "function" and t.get("name") == name), None)


class LiveFunctions:
    """A session's function calls: ``start`` one on a turn, then the outputs and the go-on."""

    def __init__(self, call: Session, script: Script) -> None:
        self._call, self._script = call, script
        self.function_calls: list[FunctionCall] = []
        self.undeclared: list[str] = []  # functions the script asked for that the session did not declare
        self._pending: dict[str, tuple[str, str]] = {}  # call_id -> (delegation id, response id)
        self._sequence = 0
        self.fail_next = False  # the next call's response ends ``response.failed``: its call discarded
        self.hold: set[int] = set()  # turns whose call's response stays in progress until ``release``
        self._held: dict[int, tuple[str, str]] = {}  # turn -> (delegation id, response id)

    def start(self, turn: int) -> bool:
        """Call the function the script wants on this user turn, if declared: whether it did."""
        wanted = self._script.tool_calls.get(turn)
        if wanted is None:
            return False
        if declared(self._call.session, wanted[0]) is None:
            self.undeclared.append(wanted[0])
            return False
        call = FunctionCall(wanted[0], json.dumps(wanted[1]), turn)
        response_id = new_id("resp")
        delegation_id = self._call.delegate(response_id)
        self.function_calls.append(call)
        failed, self.fail_next = self.fail_next, False
        if not failed:
            self._pending[call.call_id] = (delegation_id, response_id)
        item = {"id": call.item_id, "type": "function_call", "status": "completed", "call_id": call.call_id}
        item |= {"name": call.name, "arguments": call.arguments}
        done = {"type": "response.output_item.done", "output_index": 0, "item": item}
        if turn in self.hold:
            self._held[turn] = (delegation_id, response_id)
            self._respond(delegation_id, response_id, done, None)
        else:
            self._respond(delegation_id, response_id, done, "failed" if failed else "completed")
        return True

    def release(self, turn: int, end: str = "completed") -> None:
        """End the held response of ``turn``'s call: ``completed``, or ``failed`` (its call discarded)."""
        delegation_id, response_id = self._held.pop(turn)
        if end == "failed":
            for call_id in [c for c, (d, _) in self._pending.items() if d == delegation_id]:
                del self._pending[call_id]
        self._respond(delegation_id, response_id, None, end, created=False)

    def command(self, kind: str, event: dict[str, Any]) -> list[tuple[str, int]]:
        """``response.item.create`` or ``response.create`` (fields checked): what the voice now says,
        and the turn of each (its clip).

        Raises:
          Refusal: as ``take_output`` and ``go_on``.
        """
        if kind == "response.item.create":
            self.take_output(event)
            return []
        return [(self._script.tool_reply.format(output=call.output), call.turn) for call in self.go_on()]

    def take_output(self, event: dict[str, Any]) -> None:
        """``response.item.create`` (its fields checked): the output of a pending call.

        Raises:
          Refusal: no pending call has that ``call_id``, or it has its output already.
        """
        item = event["item"]
        call = next((c for c in self.function_calls if c.call_id == item["call_id"]), None)
        if call is None or call.call_id not in self._pending or call.output is not None:
            message = f"No function call awaits an output with call_id '{item['call_id']}'."
            raise Refusal(400, "invalid_value", message, "item.call_id")
        call.output = item["output"]

    def go_on(self) -> list[FunctionCall]:
        """``response.create``: the backend goes on with every output given; the calls to speak.

        Raises:
          Refusal: a pending call has no output yet, or nothing waits for outputs.
        """
        pending = [c for c in self.function_calls if c.call_id in self._pending]
        if missing := [c.call_id for c in pending if c.output is None]:
            message = f"Provide outputs for every pending function call first (missing: {', '.join(missing)})."
            raise Refusal(400, "function_call_outputs_required", message, "type")
        if not pending:
            raise Refusal(400, "no_pending_response", "No delegated response waits for function call outputs.", "type")
        for delegation_id, _ in {self._pending.pop(c.call_id) for c in pending}:
            self._respond(delegation_id, new_id("resp"), None)  # the continuation, spoken by the voice
        for call in pending:
            call.answered = True
        return pending

    def _respond(
        self,
        delegation_id: str,
        response_id: str,
        item_done: dict[str, Any] | None,
        end: str | None = "completed",
        created: bool = True,
    ) -> None:
        """One backend response (or part of it) as ``response.event`` envelopes: created, its item,
        then completed (its output trimmed) or failed (``end`` None: not yet)."""
        response = {"id": response_id, "object": "response", "status": "in_progress", "output": []}
        events: list[dict[str, Any]] = [{"type": "response.created", "response": response}] if created else []
        if item_done is not None:
            events.append(item_done)
        if end is not None:
            events.append({"type": f"response.{end}", "response": response | {"status": end}})
        for event in events:
            self._sequence += 1
            self._call.send(
                "response.event", delegation_id=delegation_id, event=event | {"sequence_number": self._sequence}
            )
