"""One GPT-Live session of the fake (``openai-live.md`` §2, §4, §6): ``session.started`` first and no
command before it, the commands of §2.4 checked strictly, a full-duplex voice that stops when the
caller keeps talking over it, transcript deltas with ``start_ms``/``end_ms`` (no done events),
cumulative usage, expiry, and ``session.closed`` with a reason, on the channel and the sideband."""

from __future__ import annotations

import asyncio
import copy
import itertools
import json
import time
from collections.abc import Callable
from typing import Any

from aiortc import RTCPeerConnection

from voicekiosk.fake.live_checks import check_event
from voicekiosk.fake.live_functions import LiveFunctions
from voicekiosk.fake.live_session import LiveOwner, Speech, resource
from voicekiosk.fake.peer import PeerCall, parse_event
from voicekiosk.fake.schema import Refusal, tokens
from voicekiosk.fake.session import merge
from voicekiosk.fake.transport import flush
from voicekiosk.fake.voice import RATE, Edge, Samples, Vad, paced
from voicekiosk.fake.wire import new_id

Listener = Callable[[str | None], None]


class LiveCall(PeerCall):
    """One session: its data channel and sideband listeners, its voice and what it heard."""

    def __init__(self, session_id: str, pc: RTCPeerConnection, session: dict[str, Any], owner: LiveOwner):
        super().__init__(session_id, pc, Vad(owner.vad_threshold, owner.silence_ms), owner.reap)
        self.rules = owner.rules
        self.session = resource(session_id, copy.deepcopy(session), owner.rules.expires_in)
        self.started_at: float | None = None  # monotonic, at session.started
        self.muted = False
        self.speech: Speech | None = None
        self.closed_reason: str | None = None
        self.delegations: set[str] = set()
        # Every command that reached the session, refused ones too, in order: ("channel" | "sideband", event).
        self.commands: list[tuple[str, dict[str, Any]]] = []
        self._owner = owner
        self._listeners: list[Listener] = []
        self.sidebands_opened = 0
        self.functions = LiveFunctions(self, owner.script)
        self._turns, self._heard = itertools.count(), itertools.count()
        permissions = self.session["client"].get("data_channel", {})
        self._allowed_in = permissions.get("allowed_client_events", "all")
        self._allowed_out = permissions.get("allowed_server_events", "all")

    # -- what tests, the answerer and the sideband call -------------------------------------

    def listen(self, listener: Listener) -> Callable[[], None]:
        """A sideband: every server event from now on goes to ``listener`` too. Returns what stops it."""
        self._listeners.append(listener)
        self.sidebands_opened += 1
        if self.closed:
            listener(None)
        return lambda: self._listeners.remove(listener) if listener in self._listeners else None

    @property
    def sidebands(self) -> int:
        return len(self._listeners)

    def drop_sidebands(self) -> None:
        """End every sideband (the session goes on): fault injection."""
        for listener in self._listeners[:]:
            listener(None)
        self._listeners.clear()

    def command(self, message: str | bytes, *, sideband: bool) -> None:
        event, kind = parse_event(message)
        if event is None or kind is None:
            self._error("invalid_json", "The event must be a JSON object with a 'type' field.")
            return
        self._command(kind, event, sideband=sideband)

    def warn(self, code: str, message: str) -> None:
        """A non-fatal ``error`` (§2.3), as a moderation hit or a refused command would send."""
        if code in self.rules.fatal_codes:
            raise ValueError(f"{code} is fatal: use fail()")
        self._error(code, message)

    def fail(self, code: str = "insufficient_quota", message: str = "You exceeded your current quota.") -> None:
        """A fatal ``error`` (§2.3, one of ``rules.fatal_codes``). The session stays open: the doc does
        not say that OpenAI ends it, so ending it is the client's part (``drop(mode="error")`` closes too)."""
        if code not in self.rules.fatal_codes:
            raise ValueError(f"{code} is not fatal: use warn()")
        self._error(code, message)

    def inform(self, code: str, message: str) -> None:
        self.send("info", code=code, message=message)

    def delegate(self, response_id: str | None = None) -> str:
        """Start a delegation (§3): ``session.delegation.created``, metadata only. Returns its id."""
        target = self.session["delegation"]["type"]
        delegation: dict[str, Any] = {"id": new_id("item_delegation"), "type": "delegation", "target": target}
        if target == "responses":
            delegation["response_id"] = response_id or new_id("resp")
        self.delegations.add(delegation["id"])
        self.send("session.delegation.created", offset_ms=self.ms(), delegation=delegation)
        return str(delegation["id"])

    def ms(self) -> int:
        """Milliseconds since ``session.started``: the clock of ``start_ms``/``end_ms``."""
        return 0 if self.started_at is None else round(1000 * (time.monotonic() - self.started_at))

    def usage(self) -> dict[str, float]:
        return {"seconds": round(max(self.rules.usage_floor_s, self.ms() / 1000), 1)}

    async def end(self, reason: str) -> None:
        """Say ``session.closed`` and close (the REST hangup, when the rules let it end WebRTC)."""
        await self._goodbye(reason)
        await self.close()

    async def close(self) -> None:
        if self.closed:
            return
        if self.closed_reason is None:  # the peer went, a drop, or shutdown: only the sideband hears why
            self.closed_reason = self.rules.peer_gone_reason
            self._blackholed = True
            self.send("session.closed", reason=self.closed_reason, session=self.session, usage=self.usage())
        self.speech = None
        await super().close()
        for listener in list(self._listeners):
            listener(None)

    # -- plumbing ---------------------------------------------------------------------------

    def _deliver(self, kind: str, text: str) -> None:
        for listener in list(self._listeners):
            listener(text)
        allowed = self._allowed_out == "all" or any(kind == s["type"] for s in self._allowed_out)
        if allowed:
            super()._deliver(kind, text)

    def _error(self, code: str, message: str, *, param: str | None = None, event_id: Any = None) -> None:
        error = {"type": "invalid_request_error", "code": code, "message": message, "param": param}
        self.send("error", error=error | ({"client_event_id": event_id} if event_id is not None else {}))

    def _fatal_error(self) -> None:
        self.fail()

    async def _goodbye(self, reason: str) -> None:
        if self.closed_reason is not None:
            return
        self.closed_reason = reason
        self.voice.cut()
        self.send("session.closed", reason=reason, session=self.session, usage=self.usage())
        await flush(self.pc, self.channel)

    async def _end_later(self, reason: str, after: float = 0.0) -> None:
        """From a task of this call: wait, say goodbye, and have the owner close the call."""
        await asyncio.sleep(after)
        await self._goodbye(reason)
        self._owner.reap(self)

    def _opened(self) -> None:
        self._spawn(self._start())

    async def _start(self) -> None:
        await asyncio.sleep(self._owner.start_delay)
        self.started_at = time.monotonic()
        self.send("session.started", session=self.session)
        if self._allowed_in != "all" or self._allowed_out != "all":
            applied = {"allowed_client_events": self._allowed_in, "allowed_server_events": self._allowed_out}
            self.inform("data_channel_permissions", f"Data channel permissions applied: {json.dumps(applied)}")
        self._spawn(self._end_later("expired", self.rules.expires_in))
        self._spawn(self._report_usage())

    async def _report_usage(self) -> None:
        while True:
            await asyncio.sleep(self._owner.usage_every)
            self.send("session.usage.updated", usage=self.usage(), context_window={"usage_ratio": 0.01})

    # -- commands ---------------------------------------------------------------------------

    def _handle(self, kind: str, event: dict[str, Any] | None) -> None:
        if event is None:
            self._error("invalid_json", "The event must be a JSON object with a 'type' field.")
        else:
            self._command(kind, event, sideband=False)

    def _command(self, kind: str, event: dict[str, Any], *, sideband: bool) -> None:
        self.commands.append(("sideband" if sideband else "channel", event))
        if self.closed_reason is not None:
            return
        event_id, delegation = event.get("event_id"), self.session["delegation"]["type"]
        allowed = "all" if sideband else self._allowed_in
        try:
            started = self.started_at is not None
            check_event(
                event,
                self.rules,
                started=started,
                allowed=allowed,
                delegation_type=delegation,
                delegations=self.delegations,
            )
        except Refusal as refusal:
            self._error(refusal.code, refusal.message, param=refusal.param, event_id=event_id)
            return
        ack = {"client_event_id": event_id} if self.rules.acks_echo_event_id and event_id is not None else {}
        if kind == "session.update":
            self._update(event["session"]["delegation"])
            self.send("session.updated", session=self.session, **ack)
        elif kind in ("session.input_audio.mute", "session.input_audio.unmute"):
            self.muted = kind.endswith(".mute")
            self.send("session.input_audio.muted" if self.muted else "session.input_audio.unmuted", **ack)
        elif kind.endswith(".append"):
            start, end = self.ms(), self.ms() + 20 * tokens(event["content"])
            self.send(kind.removesuffix("append") + "appended", start_ms=start, end_ms=end, **ack)
            if kind == "session.commentary.append":
                self._spawn(self._say(greeting=True))
        elif kind == "session.close":
            self._spawn(self._close_requested())
        else:  # response.item.create / response.create (§3.3): outputs, then the spoken result
            try:
                spoken = self.functions.command(kind, event)
            except Refusal as refusal:
                self._error(refusal.code, refusal.message, param=refusal.param, event_id=event.get("event_id"))
                return
            for text, turn in spoken:
                self._spawn(self._speak(text, self._owner.reply(turn)[1], greeting=False))

    def _update(self, delegation: dict[str, Any]) -> None:
        if self.rules.update_replaces_delegation:
            self.session["delegation"] = delegation
        else:
            merge(self.session["delegation"], delegation)

    async def _close_requested(self) -> None:
        """§2.4: drain the output (the clip being spoken ends), then ``session.closed``."""
        if self.speech is not None:
            await self.speech.done.wait()
        await self._end_later("close_requested")

    # -- listening and speaking -------------------------------------------------------------

    def _on_audio(self, edge: Edge) -> None:
        """Full duplex (§6): the model hears while it talks, and stops once the caller has kept
        talking for ``barge_in_ms``; a greeting is not heard over unless the rules say so."""
        speech = self.speech
        if (
            self.muted
            or self.started_at is None
            or (speech and speech.greeting and not self.rules.greeting_interruptible)
        ):
            return
        vad, talking = self.vad, speech is not None and not speech.done.is_set()
        if talking and vad.speaking and vad.audio_ms - vad.speech_start_ms >= self._owner.barge_in_ms:
            self.voice.cut()  # sets speech.done: _say stops its transcript
            self.barge_ins.append(time.monotonic())
        elif edge == "stop":  # a short sound over the agent's voice (a backchannel) gets no reply
            self._spawn(self._heard_turn(vad.speech_start_ms, vad.speech_end_ms, reply=not talking))

    async def _heard_turn(self, start_ms: int, end_ms: int, *, reply: bool) -> None:
        """The caller's words as input transcript deltas over their span, then a reply."""
        heard = self._owner.script.user_transcripts
        text = heard[next(self._heard) % len(heard)] if heard else f"({(end_ms - start_ms) / 1000:.1f} s of speech)"
        words, span = text.split(), end_ms - start_ms
        for i, word in enumerate(words):
            delta = word if i == len(words) - 1 else word + " "
            first, last = start_ms + span * i // len(words), start_ms + span * (i + 1) // len(words)
            self.send("session.input_transcript.delta", delta=delta, start_ms=first, end_ms=last)
        await asyncio.sleep(0.2)
        if reply and not self.vad.speaking:
            await self._say(greeting=False)

    async def _say(self, *, greeting: bool) -> None:
        """Speak the next reply clip once the current one has ended (a greeting: the opening line),
        or, on a user turn the script gives a function call, delegate it (§3.3)."""
        while self.speech is not None:
            await self.speech.done.wait()
        turn = next(self._turns)
        if not greeting and self.functions.start(turn):
            return
        text, clip = self._owner.reply(turn)
        await self._speak(text, clip, greeting=greeting and turn == 0)

    async def _speak(self, text: str, clip: Samples, *, greeting: bool) -> None:
        """Say ``text`` over ``clip`` once the current speech has ended, transcript deltas as it goes."""
        while self.speech is not None:
            await self.speech.done.wait()
        speech = self.speech = Speech(greeting=greeting, done=self.voice.play(clip))
        begin = self.ms()
        async for word, start_s, end_s in paced(text, len(clip) / RATE):
            if not self.voice.playing:  # cut: the model stopped talking
                break
            start, end = begin + round(1000 * start_s), begin + round(1000 * end_s)
            self.send("session.output_transcript.delta", delta=word, start_ms=start, end_ms=end)
        await speech.done.wait()
        if self.speech is speech:
            self.speech = None
