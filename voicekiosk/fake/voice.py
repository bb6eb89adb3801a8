"""Audio helpers for the fake agent: its script and clips, levels, a voice-activity detector and the
outgoing track."""

from __future__ import annotations

import asyncio
import fractions
import subprocess
import tempfile
import time
import wave
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
import numpy.typing as npt
from aiortc.mediastreams import MediaStreamError, MediaStreamTrack
from av import AudioFrame

RATE = 48000
FRAME = RATE // 50  # 20 ms
CLIPS = Path(__file__).parent / "clips"
Samples = npt.NDArray[np.int16]
Edge = Literal["start", "stop"] | None


@dataclass
class Script:
    """What the agent says (``(text, clip name in clips/)``, in turn, cycling) and claims to hear (cycling).

    ``tool_calls``: the responses (by number in the call, from 0) that call a function instead of
    speaking (name, arguments); once given its output and asked for a response, the agent speaks
    ``tool_reply`` with the output in it, over that turn's clip. ``parallel_calls``: how many calls
    of it such a response makes at once, and ``hold_tool_responses``: such a response stays in
    progress (refusing ``response.create``) until ``AgentCall.release`` (both Realtime only).
    """

    replies: list[tuple[str, str]] = field(
        default_factory=lambda: [
            ("Welcome to the museum! We are open every day from nine to five.", "welcome.wav"),
            ("We open at nine in the morning.", "hours.wav"),
            ("Sure, ask me anything about the exhibits.", "ask.wav"),
        ]
    )
    user_transcripts: list[str] = field(default_factory=list)
    tool_calls: dict[int, tuple[str, dict[str, Any]]] = field(default_factory=dict)
    tool_reply: str = "Here is what I found: {output}"
    parallel_calls: int = 1
    hold_tool_responses: bool = False


def render_clips(script: Script, directory: Path = CLIPS) -> None:
    """Rebuild the clips of ``script`` with espeak-ng and sox (this is how ``clips/`` was made)."""
    for text, name in script.replies:
        render(text, directory / name)


def render(text: str, path: Path, *, rate: int = 16000, speed: int = 175) -> Path:
    """Speak ``text`` with espeak-ng into a mono 16-bit WAV at ``rate``, silence trimmed at both ends."""
    with tempfile.TemporaryDirectory() as tmp:
        raw = Path(tmp) / "raw.wav"
        subprocess.run(["espeak-ng", "-s", str(speed), "-w", str(raw), text], check=True)
        trim = ["silence", "1", "0.01", "0.1%"]
        subprocess.run(
            [
                "sox",
                "-D",
                str(raw),
                "-r",
                str(rate),
                "-c",
                "1",
                "-b",
                "16",
                str(path),
                *trim,
                "reverse",
                *trim,
                "reverse",
            ],
            check=True,
        )
    return path


def load_clip(path: Path) -> Samples:
    """A mono 16-bit WAV as int16 samples at 48 kHz (linear resampling is plenty for a fake)."""
    with wave.open(str(path), "rb") as wav:
        if wav.getnchannels() != 1 or wav.getsampwidth() != 2:
            raise ValueError(f"{path}: expected mono 16-bit PCM")
        rate = wav.getframerate()
        samples = np.frombuffer(wav.readframes(wav.getnframes()), dtype="<i2").astype(np.float64)
    if rate != RATE:
        n = round(len(samples) * RATE / rate)
        samples = np.interp(np.arange(n) * rate / RATE, np.arange(len(samples)), samples)
    return np.clip(np.round(samples), -32768, 32767).astype(np.int16)


def level(samples: npt.NDArray[Any]) -> float:
    """RMS of 16-bit samples (an s16 frame's ``to_ndarray()``), 0..1."""
    if samples.size == 0:
        return 0.0
    return float(np.sqrt(np.mean(np.square(samples.astype(np.float64) / 32768.0))))


class Vad:
    """Level-based voice activity: speech starts after ``start_ms`` above the threshold and
    stops after ``silence_ms`` below it. Times are milliseconds of audio fed so far."""

    def __init__(self, threshold: float, silence_ms: int, start_ms: int = 60) -> None:
        self.threshold = threshold
        self.silence_ms = silence_ms
        self.start_ms = start_ms
        self.audio_ms = 0
        self.speaking = False
        self.speech_start_ms = 0
        self.speech_end_ms = 0
        self._run_ms = 0  # consecutive ms on the "other" side of the threshold

    def feed(self, rms: float, ms: int) -> Edge:
        self.audio_ms += ms
        loud = rms > self.threshold
        if loud != self.speaking:
            self._run_ms += ms
        else:
            self._run_ms = 0
            if loud:
                self.speech_end_ms = self.audio_ms
        if not self.speaking and self._run_ms >= self.start_ms:
            self.speaking, self._run_ms = True, 0
            self.speech_start_ms = self.audio_ms - self.start_ms
            self.speech_end_ms = self.audio_ms
            return "start"
        if self.speaking and self._run_ms >= self.silence_ms:
            self.speaking, self._run_ms = False, 0
            return "stop"
        return None


async def paced(text: str, seconds: float) -> AsyncIterator[tuple[str, float, float]]:
    """The words of ``text`` as a clip of ``seconds`` speaks them, each when it starts: the word (with
    its trailing space, but the last) and its start and end in seconds into the clip."""
    words, start = text.split(), time.monotonic()
    for i, word in enumerate(words):
        await asyncio.sleep(start + seconds * i / len(words) - time.monotonic())
        yield (word if i == len(words) - 1 else word + " "), seconds * i / len(words), seconds * (i + 1) / len(words)


class VoiceTrack(MediaStreamTrack):
    """Outgoing agent audio: 20 ms mono s16 48 kHz frames paced in real time, silence between clips."""

    kind = "audio"

    def __init__(self) -> None:
        super().__init__()
        self._clip: Samples | None = None
        self._pos = 0
        self._done = asyncio.Event()
        self._start: float | None = None
        self._pts = 0
        self._cut_at: float | None = None
        self.silenced: list[tuple[float, float]] = []  # (cut requested, first silent frame emitted)

    @property
    def playing(self) -> bool:
        return self._clip is not None

    def play(self, clip: Samples) -> asyncio.Event:
        """Start speaking ``clip`` with the next frame; the event is set when it has all been sent."""
        self._done.set()
        self._clip, self._pos, self._done = clip, 0, asyncio.Event()
        return self._done

    def cut(self) -> float:
        """Silence from the next frame on. Returns the seconds of the clip already sent."""
        played = self._pos / RATE
        if self._clip is not None:
            self._clip, self._cut_at = None, time.monotonic()
        self._done.set()
        return played

    async def recv(self) -> AudioFrame:
        if self.readyState != "live":
            raise MediaStreamError
        if self._start is None:
            self._start = time.monotonic()
        else:
            self._pts += FRAME
            await asyncio.sleep(self._start + self._pts / RATE - time.monotonic())
        frame = AudioFrame.from_ndarray(self._next().reshape(1, -1), format="s16", layout="mono")
        frame.sample_rate = RATE
        frame.pts = self._pts
        frame.time_base = fractions.Fraction(1, RATE)
        return frame

    def _next(self) -> Samples:
        if self._clip is None:
            if self._cut_at is not None:
                self.silenced.append((self._cut_at, time.monotonic()))
                self._cut_at = None
            return np.zeros(FRAME, dtype=np.int16)
        chunk = self._clip[self._pos : self._pos + FRAME]
        self._pos += FRAME
        if self._pos >= len(self._clip):
            self._clip = None
            self._done.set()
        if len(chunk) < FRAME:
            chunk = np.concatenate([chunk, np.zeros(FRAME - len(chunk), dtype=np.int16)])
        return chunk
