"""A fake OpenAI Realtime peer on aiortc that really speaks: ``AgentAnswerer``, for ``FakeOpenAI``.

One RTCPeerConnection per call. The caller's mic is judged by its level only (no speech recognition):
a VAD finds turns, each is answered with the next espeak-ng clip of the ``Script``, and GA server
events go out on the ``oai-events`` data channel, barge-in included.
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import itertools
import json
import logging
import secrets
import time
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from typing import Any, Literal

import aioice.ice
import numpy as np
from aiortc import RTCConfiguration, RTCDataChannel, RTCPeerConnection, RTCSessionDescription
from aiortc.mediastreams import MediaStreamError, MediaStreamTrack
from av import AudioFrame

from voicekiosk import net
from voicekiosk.fake.server import described
from voicekiosk.fake.voice import CLIPS, RATE, Samples, Script, Vad, VoiceTrack, level, load_clip

__all__ = ["AgentAnswerer", "AgentCall", "Script", "patch_host_addresses", "strip_candidates"]

log = logging.getLogger("voicekiosk.fake.agent")

LOOPBACK = ("127.0.0.1", "::1")
KEEP_CLOSED = 50  # ended calls kept in ``calls`` for inspection
DropMode = Literal["close", "error", "blackhole"]
TURN_DEFAULTS: dict[str, Any] = {"type": "server_vad", "threshold": 0.5, "prefix_padding_ms": 300}
TURN_DEFAULTS |= {"idle_timeout_ms": None, "create_response": True, "interrupt_response": True}


# -- network ----------------------------------------------------------------------------------


def patch_host_addresses(*, loopback_only: bool) -> None:
    """Make aioice gather 127.0.0.1 (it leaves loopback out), plus LAN IPv4 unless ``loopback_only``.

    This replaces ``aioice.ice.get_host_addresses`` for the whole process.
    """

    def host_addresses(use_ipv4: bool, use_ipv6: bool) -> list[str]:
        if loopback_only:
            return ["127.0.0.1"]
        return ["127.0.0.1", *(a for a in net.lan_addresses() if ":" not in a and not a.startswith("169.254."))]

    aioice.ice.get_host_addresses = host_addresses


def strip_candidates(sdp: str) -> tuple[str, int]:
    """Drop every ``a=candidate`` line whose address is not loopback; returns the SDP and the count."""
    kept, dropped = [], 0
    for line in sdp.splitlines(keepends=True):
        fields = line.split()
        if line.startswith("a=candidate:") and (len(fields) < 5 or fields[4] not in LOOPBACK):
            dropped += 1
        else:
            kept.append(line)
    return "".join(kept), dropped


# -- event payloads ---------------------------------------------------------------------------


def new_id(prefix: str) -> str:
    return f"{prefix}_{secrets.token_hex(10)}"


def session_object(session: dict[str, Any], silence_ms: int) -> dict[str, Any]:
    """The session as ``session.created`` shows it: GA shape, server defaults filled in."""
    obj = described(copy.deepcopy(session))
    obj.update(expires_at=int(time.time()) + 3600, tracing=None, prompt=None, include=None)
    audio_in = obj["audio"]["input"]
    audio_in.setdefault("transcription", None)
    audio_in.setdefault("noise_reduction", None)
    audio_in.setdefault("turn_detection", {**TURN_DEFAULTS, "silence_duration_ms": silence_ms})
    obj["audio"]["output"].setdefault("speed", 1)
    return obj


def merge(base: dict[str, Any], update: dict[str, Any]) -> None:
    """Update nested dicts in place, as ``session.update`` does."""
    for key, value in update.items():
        if isinstance(value, dict) and isinstance(base.get(key), dict):
            merge(base[key], value)
        else:
            base[key] = value


def usage(heard_s: float, words: int, spoken_s: float, turn: int) -> dict[str, Any]:
    """GA ``usage`` with plausible counts: ~10 tokens per second heard, ~20 per second spoken."""
    text_in, audio_in = 120 + 40 * turn, max(1, round(heard_s * 10))
    text_out, audio_out = max(1, round(words * 1.3)), max(1, round(spoken_s * 20))
    cached = min(64 * turn, text_in)
    details_in: dict[str, Any] = {
        "text_tokens": text_in,
        "audio_tokens": audio_in,
        "image_tokens": 0,
        "cached_tokens": cached,
    }
    details_in["cached_tokens_details"] = {"text_tokens": cached, "audio_tokens": 0, "image_tokens": 0}
    return {
        "total_tokens": text_in + audio_in + text_out + audio_out,
        "input_tokens": text_in + audio_in,
        "output_tokens": text_out + audio_out,
        "input_token_details": details_in,
        "output_token_details": {"text_tokens": text_out, "audio_tokens": audio_out},
    }


@dataclass
class Response:
    id: str
    item_id: str
    text: str
    clip: Samples
    heard_s: float
    turn: int
    spoken: list[str] = field(default_factory=list)  # transcript deltas sent so far
    task: asyncio.Task[None] | None = None

    def where(self) -> dict[str, Any]:
        return {"response_id": self.id, "item_id": self.item_id, "output_index": 0, "content_index": 0}

    def item(self, status: str, content: list[dict[str, Any]]) -> dict[str, Any]:
        item = {"id": self.item_id, "object": "realtime.item", "type": "message", "status": status}
        return {**item, "role": "assistant", "content": content}


# -- one call ---------------------------------------------------------------------------------


class AgentCall:
    """One call: its peer connection, data channel, VAD and the response being spoken."""

    def __init__(self, call_id: str, pc: RTCPeerConnection, session: dict[str, Any], owner: AgentAnswerer):
        self.call_id = call_id
        self.pc = pc
        self.session = session_object(session, owner.silence_ms)
        self.voice = VoiceTrack()
        self.vad = Vad(owner.vad_threshold, owner.silence_ms)
        self.events: list[tuple[float, str, str]] = []  # (monotonic, "in" | "out", event type)
        self.barge_ins: list[float] = []  # when the VAD cut the agent's audio
        self.channel: RTCDataChannel | None = None
        self.response: Response | None = None
        self.closed = False
        self._owner = owner
        self._tasks: set[asyncio.Task[None]] = set()
        self._turns, self._heard = itertools.count(), itertools.count()
        self._conversation = new_id("conv")
        self._last_item: str | None = None
        self._speech_item = ""
        self._blackholed = False
        self._configure()
        pc.on("datachannel", self._on_datachannel)
        pc.on("track", self._on_track)
        pc.on("connectionstatechange", self._on_state)

    @property
    def turn_detection(self) -> dict[str, Any] | None:
        turn: dict[str, Any] | None = self.session["audio"]["input"].get("turn_detection")
        return turn

    async def close(self) -> None:
        if self.closed:
            return
        self.closed, self.response = True, None
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        self.voice.stop()
        await self.pc.close()

    async def drop(self, mode: DropMode) -> None:
        if mode == "blackhole":
            self._blackhole()
            return
        if mode == "error":
            self._error("session_expired", "Your session hit the maximum duration of 60 minutes.")
            await self._flush()
        await self.close()

    def send(self, kind: str, **fields: Any) -> None:
        if self._blackholed or self.channel is None or self.channel.readyState != "open":
            return
        self.channel.send(json.dumps({"type": kind, "event_id": new_id("event"), **fields}))
        self.events.append((time.monotonic(), "out", kind))

    # -- plumbing ---------------------------------------------------------------------------

    def _spawn(self, coro: Coroutine[Any, Any, None]) -> asyncio.Task[None]:
        task = asyncio.create_task(coro)
        if self.closed:
            task.cancel()
        self._tasks.add(task)
        task.add_done_callback(self._reap)
        return task

    def _reap(self, task: asyncio.Task[None]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and (exc := task.exception()):
            log.error("fake agent task failed on %s", self.call_id, exc_info=exc)

    def _configure(self) -> None:
        turn = self.turn_detection or {}
        self.vad.silence_ms = int(turn.get("silence_duration_ms", self._owner.silence_ms))

    def _on_state(self) -> None:
        if self.pc.connectionState in ("failed", "closed") and not self.closed:
            self._owner.reap(self)

    def _blackhole(self) -> None:
        """Go quiet on the wire: no media, no data, no ICE or DTLS, and no goodbye either."""
        self._blackholed = True
        self.voice.stop()
        transports = [t.sender.transport for t in self.pc.getTransceivers()]
        if self.pc.sctp is not None:
            transports.append(self.pc.sctp.transport)
        for dtls in transports:
            for protocol in getattr(getattr(dtls.transport, "_connection", None), "_protocols", []):
                protocol.transport.close()

    async def _flush(self, timeout: float = 1.0) -> None:
        """Wait (bounded) until what went on the data channel has been sent and acknowledged."""
        deadline, sctp = time.monotonic() + timeout, self.pc.sctp
        while time.monotonic() < deadline:
            queued = self.channel is not None and self.channel.bufferedAmount > 0
            if not (queued or getattr(sctp, "_outbound_queue", None) or getattr(sctp, "_sent_queue", None)):
                return
            await asyncio.sleep(0.01)

    # -- data channel -----------------------------------------------------------------------

    def _on_datachannel(self, channel: RTCDataChannel) -> None:
        if channel.label != "oai-events":
            return
        self.channel = channel
        channel.on("message", self._on_message)
        if channel.readyState == "open":
            self.send("session.created", session=self.session)
        else:
            channel.on("open", lambda: self.send("session.created", session=self.session))

    def _on_message(self, message: str | bytes) -> None:
        try:
            event = json.loads(message)
        except ValueError:
            event = None
        kind = event.get("type") if isinstance(event, dict) else None
        self.events.append((time.monotonic(), "in", kind if isinstance(kind, str) else "invalid"))
        if not isinstance(event, dict) or not isinstance(kind, str):
            self._error("invalid_event", "The event must be a JSON object with a 'type' field.")
            return
        handlers: dict[str, Callable[[dict[str, Any]], None]] = {
            "session.update": self._session_update,
            "response.create": self._response_create,
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
        if not isinstance(update := event.get("session"), dict):
            message = "Missing required parameter: 'session'."
            self._error("missing_required_parameter", message, param="session", event_id=event.get("event_id"))
            return
        merge(self.session, {k: v for k, v in update.items() if k not in ("type", "model")})
        self._configure()
        self.send("session.updated", session=self.session)

    def _response_create(self, event: dict[str, Any]) -> None:
        if self.response is None:
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

    def _on_track(self, track: MediaStreamTrack) -> None:
        if track.kind == "audio":
            self._spawn(self._listen(track))

    async def _listen(self, track: MediaStreamTrack) -> None:
        with contextlib.suppress(MediaStreamError):
            while True:
                frame = await track.recv()
                if not isinstance(frame, AudioFrame):
                    continue
                edge = self.vad.feed(level(frame.to_ndarray()), round(1000 * frame.samples / frame.sample_rate))
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
        item: dict[str, Any] = {"id": item_id, "object": "realtime.item", "type": "message", "role": "user"}
        item |= {"status": "completed", "content": [{"type": "input_audio", "transcript": None}]}
        self.send("conversation.item.added", previous_item_id=previous, item=item)
        self._spawn(self._after_turn(item_id, (self.vad.speech_end_ms - self.vad.speech_start_ms) / 1000))

    async def _after_turn(self, item_id: str, heard_s: float) -> None:
        await asyncio.sleep(0.15)
        heard = self._owner.script.user_transcripts
        transcript = heard[next(self._heard) % len(heard)] if heard else f"({heard_s:.1f} s of speech)"
        tokens = {"input_tokens": max(1, round(heard_s * 10)), "output_tokens": len(transcript.split())}
        spent = {"type": "tokens", "total_tokens": sum(tokens.values()), **tokens}
        spent["input_token_details"] = {"text_tokens": 0, "audio_tokens": tokens["input_tokens"]}
        kind = "conversation.item.input_audio_transcription.completed"
        self.send(kind, item_id=item_id, content_index=0, transcript=transcript, usage=spent)
        if (self.turn_detection or {}).get("create_response", True) and self.response is None:
            self._start_response(heard_s)

    # -- speaking ---------------------------------------------------------------------------

    def _start_response(self, heard_s: float) -> None:
        turn = next(self._turns)
        text, clip = self._owner.reply(turn)
        self.response = Response(new_id("resp"), new_id("item"), text, clip, heard_s, turn)
        self.response.task = self._spawn(self._speak(self.response))

    async def _speak(self, resp: Response) -> None:
        self.send("response.created", response=self._response_object(resp, "in_progress"))
        self.send("response.output_item.added", response_id=resp.id, output_index=0, item=resp.item("in_progress", []))
        self.send("response.content_part.added", **resp.where(), part={"type": "output_audio", "transcript": ""})
        done = self.voice.play(resp.clip)
        self.send("output_audio_buffer.started", response_id=resp.id)
        words, seconds, start = resp.text.split(), len(resp.clip) / RATE, time.monotonic()
        for i, word in enumerate(words):
            await asyncio.sleep(start + seconds * i / len(words) - time.monotonic())
            resp.spoken.append(word if i == len(words) - 1 else word + " ")
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
        """The closing events of a response, completed or (with a reason) cancelled."""
        self.response, self._last_item = None, resp.item_id
        transcript = "".join(resp.spoken).strip() if cancelled else resp.text
        part = {"type": "output_audio", "transcript": transcript}
        self.send("response.output_audio_transcript.done", **resp.where(), transcript=transcript)
        self.send("response.content_part.done", **resp.where(), part=part)
        item = resp.item("incomplete" if cancelled else "completed", [part])
        self.send("response.output_item.done", response_id=resp.id, output_index=0, item=item)
        details = {"type": "cancelled", "reason": cancelled} if cancelled else None
        spent = usage(resp.heard_s, len(transcript.split()), played_s, resp.turn)
        status = "cancelled" if cancelled else "completed"
        obj = self._response_object(resp, status, status_details=details, output=[item], usage=spent)
        self.send("response.done", response=obj)

    def _response_object(self, resp: Response, status: str, **extra: Any) -> dict[str, Any]:
        voice = self.session["audio"]["output"]["voice"]
        audio = {"output": {"format": {"type": "audio/pcm", "rate": 24000}, "voice": voice}}
        obj: dict[str, Any] = {"object": "realtime.response", "id": resp.id, "status": status, "output": []}
        obj |= {"conversation_id": self._conversation, "output_modalities": ["audio"], "max_output_tokens": "inf"}
        return obj | {"status_details": None, "audio": audio, "usage": None, "metadata": None, **extra}


# -- the answerer -----------------------------------------------------------------------------


class AgentAnswerer:
    """The media side of ``FakeOpenAI``: a peer per call that listens, talks and can be interrupted."""

    def __init__(
        self,
        *,
        loopback_only: bool = True,
        vad_threshold: float = 0.004,
        silence_ms: int = 500,
        script: Script | None = None,
    ) -> None:
        self.loopback_only = loopback_only
        self.vad_threshold = vad_threshold
        self.silence_ms = silence_ms
        self.script = script or Script()
        self.calls: dict[str, AgentCall] = {}
        self.netguard_dropped = 0  # non-loopback candidates stripped from offers
        self._clips = [load_clip(CLIPS / name) for _, name in self.script.replies]
        self._closing: set[asyncio.Task[None]] = set()
        patch_host_addresses(loopback_only=loopback_only)

    def reply(self, turn: int) -> tuple[str, Samples]:
        """Text and 48 kHz samples of the reply for the ``turn``-th response of a call."""
        i = turn % len(self._clips)
        return self.script.replies[i][0], self._clips[i]

    async def answer(self, call_id: str, offer: str, session: dict[str, Any]) -> str:
        if self.loopback_only:
            offer, dropped = strip_candidates(offer)
            self.netguard_dropped += dropped
        for ended in [i for i, c in self.calls.items() if c.closed][:-KEEP_CLOSED]:
            del self.calls[ended]
        pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))  # else aiortc uses Google's STUN
        call = self.calls[call_id] = AgentCall(call_id, pc, session, self)
        try:
            await pc.setRemoteDescription(RTCSessionDescription(sdp=offer, type="offer"))
            pc.addTrack(call.voice)
            await pc.setLocalDescription(await pc.createAnswer())
        except Exception:
            del self.calls[call_id]
            await call.close()
            raise
        return pc.localDescription.sdp

    async def hang_up(self, call_id: str) -> bool:
        if (call := self.calls.get(call_id)) is None or call.closed:
            return False
        await call.close()
        return True

    async def drop(self, call_id: str | None = None, mode: DropMode = "close") -> str | None:
        """Fault injection: end a call (None: the newest) abruptly. Returns its id, or None."""
        call = self.newest() if call_id is None else self.calls.get(call_id)
        if call is None or call.closed:
            return None
        await call.drop(mode)
        return call.call_id

    def newest(self) -> AgentCall | None:
        return next((c for c in reversed(self.calls.values()) if not c.closed), None)

    def say(self, seconds: float) -> str | None:
        """Benchmarks: make the newest call talk (its replies back to back) for ``seconds``."""
        call = self.newest()
        if call is None:
            return None
        clips = np.concatenate(self._clips)
        call.voice.play(np.tile(clips, int(seconds * RATE / len(clips)) + 1)[: int(seconds * RATE)])
        return call.call_id

    async def hang_up_all(self) -> int:
        """End every open call (benchmarks: pages that never hang up leave theirs behind)."""
        open_calls = [c for c in self.calls.values() if not c.closed]
        await asyncio.gather(*(c.close() for c in open_calls))
        return len(open_calls)

    def reap(self, call: AgentCall) -> None:
        """Close a call whose connection ended on its own."""
        task = asyncio.create_task(call.close())
        self._closing.add(task)
        task.add_done_callback(self._closing.discard)

    async def close(self) -> None:
        await asyncio.gather(*(call.close() for call in self.calls.values()))
        await asyncio.gather(*self._closing, return_exceptions=True)
