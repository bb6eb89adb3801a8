"""One call of the fake Realtime agent: the GA events on its ``oai-events`` data channel and on the
server's sideband, the turns its VAD finds (by level only, no speech recognition), the replies it
speaks, barge-in included, and the functions it calls. The peer plumbing it shares with the Live
peer is ``peer.PeerCall``."""

from __future__ import annotations

import asyncio
import itertools
import json
import time
from collections.abc import Callable
from typing import Any, Protocol, cast

import numpy as np
from aiortc import RTCPeerConnection

from voicekiosk.fake.client_events import CLIENT_EVENTS, added_item
from voicekiosk.fake.functions import FunctionCall, calling, declared
from voicekiosk.fake.peer import PeerCall, parse_event
from voicekiosk.fake.schema import Refusal
from voicekiosk.fake.session import merge, session_object
from voicekiosk.fake.voice import RATE, Edge, Samples, Script, Vad, paced
from voicekiosk.fake.wire import Response, new_id, transcription_usage, user_item

Listener = Callable[[str | None], None]  # a sideband: each server event as JSON text, None at the end


class Owner(Protocol):
    """What a call asks of the answerer that owns it."""

    vad_threshold: float
    silence_ms: int
    script: Script

    def reply(self, turn: int) -> tuple[str, Samples]: ...

    def reap(self, call: AgentCall) -> None: ...


class AgentCall(PeerCall):
    """One call: its GA session, VAD turns and the response being spoken."""

    def __init__(self, call_id: str, pc: RTCPeerConnection, session: dict[str, Any], owner: Owner):
        super().__init__(call_id, pc, Vad(owner.vad_threshold, owner.silence_ms), owner.reap)
        self.session = session_object(session, owner.silence_ms)
        self.response: Response | None = None
        self._owner = owner
        self._turns, self._heard = itertools.count(), itertools.count()
        self._conversation = new_id("conv")
        self._last_item: str | None = None
        self._speech_item = ""
        self._sidebands: list[Listener] = []
        self.sidebands_opened = 0
        self.function_calls: list[FunctionCall] = []
        self.undeclared: list[str] = []  # functions the script asked for that the session did not declare
        self.commands: list[tuple[str, dict[str, Any]]] = []  # ("channel" | "sideband", event) in order
        self._held: dict[str, Any] | None = None  # a held response's ``response.done`` (``Script.hold``)
        self._configure()

    @property
    def turn_detection(self) -> dict[str, Any] | None:
        return cast("dict[str, Any] | None", self.session["audio"]["input"].get("turn_detection"))

    async def close(self) -> None:
        if not self.closed:
            self.response = None
        await super().close()
        self.drop_sidebands()

    # -- the sideband -----------------------------------------------------------------------

    def listen(self, listener: Listener) -> Callable[[], None]:
        """A sideband: every server event from now on goes to ``listener`` too. Returns what stops it."""
        self._sidebands.append(listener)
        self.sidebands_opened += 1
        if self.closed:
            listener(None)
        return lambda: self._sidebands.remove(listener) if listener in self._sidebands else None

    def drop_sidebands(self) -> None:
        """End every sideband (the call goes on): fault injection, and the end of the call."""
        for listener in self._sidebands[:]:
            listener(None)
        self._sidebands.clear()

    @property
    def sidebands(self) -> int:
        return len(self._sidebands)

    def command(self, message: str | bytes) -> None:
        """A client event that came over a sideband."""
        event, kind = parse_event(message)
        self.events.append((time.monotonic(), "in", kind or "invalid"))
        self._handle(kind or "invalid", event, source="sideband")

    def _deliver(self, kind: str, text: str) -> None:
        super()._deliver(kind, text)
        if not self._blackholed:
            for listener in self._sidebands:
                listener(text)

    def _fatal_error(self) -> None:
        self._error("session_expired", "Your session hit the maximum duration of 60 minutes.")

    def _configure(self) -> None:
        turn = self.turn_detection or {}
        self.vad.silence_ms = int(turn.get("silence_duration_ms", self._owner.silence_ms))

    # -- data channel -----------------------------------------------------------------------

    def _opened(self) -> None:
        self.send("session.created", session=self.session)

    def _handle(self, kind: str, event: dict[str, Any] | None, source: str = "channel") -> None:
        if event is None:
            self._error("invalid_event", "The event must be a JSON object with a 'type' field.")
            return
        self.commands.append((source, event))
        if (check := CLIENT_EVENTS.get(kind)) is not None:
            try:
                check(event, "")
            except Refusal as refusal:
                self._error(refusal.code, refusal.message, param=refusal.param, event_id=event.get("event_id"))
                return
        handlers: dict[str, Callable[[dict[str, Any]], None]] = {
            "session.update": self._session_update,
            "response.create": self._response_create,
            "conversation.item.create": self._item_create,
            "response.cancel": self._response_cancel,
            "output_audio_buffer.clear": self._output_clear,
            "input_audio_buffer.clear": lambda e: self.send("input_audio_buffer.cleared"),
        }
        if (handler := handlers.get(kind)) is None:
            message = f"Invalid value: '{kind}'. Supported values are: {', '.join(sorted(handlers))}."
            self._error("invalid_event", message, param="type", event_id=event.get("event_id"))
        else:
            handler(event)

    def _error(self, code: str, message: str, *, param: str | None = None, event_id: Any = None) -> None:
        error = {"type": "invalid_request_error", "code": code, "message": message, "param": param}
        self.send("error", error={**error, "event_id": event_id})

    def _session_update(self, event: dict[str, Any]) -> None:
        update = event["session"]  # checked: a closed GA session object, its tools included
        merge(self.session, {k: v for k, v in update.items() if k not in ("type", "model")})
        self._configure()
        self.send("session.updated", session=self.session)

    def _item_create(self, event: dict[str, Any]) -> None:
        item = event["item"]  # checked: a message (kept in ``commands``) or a function_call_output
        if item["type"] == "message":
            self.send("conversation.item.added", previous_item_id=self._last_item, item=added_item(item))
            return
        call = next((c for c in self.function_calls if c.call_id == item["call_id"] and c.output is None), None)
        if call is None:
            message = f"No function call awaits an output with call_id '{item['call_id']}'."
            self._error("invalid_value", message, param="item.call_id", event_id=event.get("event_id"))
            return
        call.output = item["output"]
        self.send("conversation.item.added", previous_item_id=self._last_item, item=call.output_item())

    def _response_create(self, event: dict[str, Any]) -> None:
        if self.response is None:
            answered = next((c for c in self.function_calls if c.output is not None and not c.answered), None)
            if answered is not None:
                answered.answered = True
                _, clip = self._owner.reply(answered.turn)
                text = self._owner.script.tool_reply.format(output=answered.output)
                self._speak_reply(text, clip, 0.0, answered.turn)
            else:
                self._start_response(heard_s=0.0)
            return
        message = f"Conversation already has an active response in progress: {self.response.id}."
        self._error("conversation_already_has_active_response", message, event_id=event.get("event_id"))

    def _response_cancel(self, event: dict[str, Any]) -> None:
        if self.response is not None:
            self._interrupt("client_cancelled", cleared=False)
            return
        message = "Cancellation failed: no active response found"
        self._error("response_cancel_not_active", message, event_id=event.get("event_id"))

    def _output_clear(self, event: dict[str, Any]) -> None:
        # The fake makes its audio in real time, so clearing the buffer also ends the response.
        if self.response is not None:
            self._interrupt("client_cancelled", cleared=True)
        else:
            self.voice.cut()
            self.send("output_audio_buffer.cleared")

    # -- listening --------------------------------------------------------------------------

    def _on_audio(self, edge: Edge) -> None:
        if edge == "start" and self.turn_detection is not None:
            self._speech_started()
        elif edge == "stop" and self.turn_detection is not None:
            self._speech_stopped()

    def _speech_started(self) -> None:
        barge_in = self.response is not None and (self.turn_detection or {}).get("interrupt_response", True)
        if barge_in:
            self.voice.cut()  # first, so that the very next 20 ms frame is silence
            self.barge_ins.append(time.monotonic())
        self._speech_item = new_id("item")
        start_ms = self.vad.speech_start_ms
        self.send("input_audio_buffer.speech_started", audio_start_ms=start_ms, item_id=self._speech_item)
        if barge_in:
            self._interrupt("turn_detected", cleared=True)

    def _speech_stopped(self) -> None:
        item_id, previous = self._speech_item, self._last_item
        self._last_item = item_id
        self.send("input_audio_buffer.speech_stopped", audio_end_ms=self.vad.speech_end_ms, item_id=item_id)
        self.send("input_audio_buffer.committed", previous_item_id=previous, item_id=item_id)
        self.send("conversation.item.added", previous_item_id=previous, item=user_item(item_id))
        self._spawn(self._after_turn(item_id, (self.vad.speech_end_ms - self.vad.speech_start_ms) / 1000))

    async def _after_turn(self, item_id: str, heard_s: float) -> None:
        await asyncio.sleep(0.15)
        heard = self._owner.script.user_transcripts
        transcript = heard[next(self._heard) % len(heard)] if heard else f"({heard_s:.1f} s of speech)"
        spent = transcription_usage(heard_s, transcript)
        kind = "conversation.item.input_audio_transcription.completed"
        self.send(kind, item_id=item_id, content_index=0, transcript=transcript, usage=spent)
        if (self.turn_detection or {}).get("create_response", True) and self.response is None:
            self._start_response(heard_s)

    # -- speaking ---------------------------------------------------------------------------

    def _start_response(self, heard_s: float) -> None:
        turn = next(self._turns)
        text, clip = self._owner.reply(turn)
        if (wanted := self._owner.script.tool_calls.get(turn)) is not None:
            if declared(self.session, wanted[0]) is not None:
                self._call_functions(wanted[0], json.dumps(wanted[1]), turn, heard_s)
                return
            self.undeclared.append(wanted[0])
        self._speak_reply(text, clip, heard_s, turn)

    def _speak_reply(self, text: str, clip: Samples, heard_s: float, turn: int) -> None:
        self.response = Response(new_id("resp"), new_id("item"), text, clip, heard_s, turn)
        self.response.task = self._spawn(self._speak(self.response))

    def _call_functions(self, name: str, arguments: str, turn: int, heard_s: float) -> None:
        """A response that only calls ``name`` (``Script.parallel_calls`` times); the agent waits for the outputs."""
        calls = [FunctionCall(name, arguments, turn) for _ in range(self._owner.script.parallel_calls)]
        self.function_calls += calls
        resp = Response(new_id("resp"), calls[-1].item_id, "", np.zeros(0, np.int16), heard_s, turn)
        *events, last = calling(calls, resp.payload("in_progress", **self._response_context()), heard_s)
        for kind, fields in events if (hold := self._owner.script.hold_tool_responses) else [*events, last]:
            self.send(kind, **fields)
        self._last_item, self._held = calls[-1].item_id, last[1] if hold else None
        self.response = resp if hold else self.response

    def release(self) -> None:
        """End the held function-calling response."""
        assert self._held is not None, "no response is held"
        self.send("response.done", **self._held)
        self.response = self._held = None

    async def _speak(self, resp: Response) -> None:
        self.send("response.created", response=resp.payload("in_progress", **self._response_context()))
        self.send("response.output_item.added", response_id=resp.id, output_index=0, item=resp.item("in_progress", []))
        self.send("response.content_part.added", **resp.where(), part={"type": "output_audio", "transcript": ""})
        done = self.voice.play(resp.clip)
        self.send("output_audio_buffer.started", response_id=resp.id)
        seconds = len(resp.clip) / RATE
        async for word, _, _ in paced(resp.text, seconds):
            resp.spoken.append(word)
            self.send("response.output_audio_transcript.delta", **resp.where(), delta=resp.spoken[-1])
        await done.wait()
        if self.response is resp:
            self._finish(resp, seconds)
            self.send("output_audio_buffer.stopped", response_id=resp.id)

    def _interrupt(self, reason: str, *, cleared: bool) -> None:
        if (resp := self.response) is None:
            return
        played = self.voice.cut()
        if resp.task is not None:
            resp.task.cancel()
        if cleared:
            self.send("output_audio_buffer.cleared", response_id=resp.id)
        self._finish(resp, played, reason)
        if not cleared:
            self.send("output_audio_buffer.stopped", response_id=resp.id)

    def _finish(self, resp: Response, played_s: float, cancelled: str | None = None) -> None:
        """Send the closing events of a response, completed or (with a reason) cancelled."""
        self.response, self._last_item = None, resp.item_id
        for kind, fields in resp.closing(played_s, cancelled, **self._response_context()):
            self.send(kind, **fields)

    def _response_context(self) -> dict[str, Any]:
        """What a response object shows of its call: the session's voice (as now) and the conversation."""
        return {"voice": self.session["audio"]["output"]["voice"], "conversation": self._conversation}
