"""The fake mic: a WAV the browser (or a Python peer) plays as its microphone, built with espeak-ng + sox.

Only the standard library here, so that importing it (conftest does) needs no ``demo`` extras.
"""

from __future__ import annotations

import array
import math
import subprocess
import sys
import tempfile
import wave
from pathlib import Path

import pytest

ARTIFACTS = Path(__file__).parent / "artifacts"
RATE = 48000
# (silence before, words, silence after): 1.5 s + ~2.8 s + 1.1 s + ~1.6 s + 4.5 s
MIC_SCRIPT = [
    (1.5, "Hello there, I would like to visit the museum today.", 1.1),
    (0.0, "Sorry, what time do you open?", 4.5),
]


def make_mic_wav(path: Path = ARTIFACTS / "mic.wav", script: list[tuple[float, str, float]] = MIC_SCRIPT) -> Path:
    """Build (or reuse, if newer than this module) the fake-mic WAV of ``script``: 48 kHz mono 16-bit."""
    if path.exists() and path.stat().st_mtime >= Path(__file__).stat().st_mtime:
        return path
    path.parent.mkdir(parents=True, exist_ok=True)
    trim = ["silence", "1", "0.01", "0.1%"]  # leading silence; reversed, the trailing one
    with tempfile.TemporaryDirectory() as tmp:
        parts = []
        for i, (before, words, after) in enumerate(script):
            raw, part = Path(tmp) / f"raw{i}.wav", Path(tmp) / f"part{i}.wav"
            subprocess.run(["espeak-ng", "-s", "185", "-w", str(raw), words], check=True)
            effects = [*trim, "reverse", *trim, "reverse", "pad", str(before), str(after)]
            subprocess.run(
                ["sox", "-D", str(raw), "-r", str(RATE), "-c", "1", "-b", "16", str(part), *effects], check=True
            )
            parts.append(str(part))
        built = Path(tmp) / "mic.wav"
        subprocess.run(["sox", *parts, str(built)], check=True)
        built.replace(path)
    return path


def speech_spans(path: Path, threshold: float = 0.004, gap: float = 0.5) -> list[tuple[float, float]]:
    """Where a 16-bit mono WAV has speech, in seconds: 20 ms windows with RMS (0..1) above
    ``threshold``, gaps shorter than ``gap`` merged."""
    with wave.open(str(path), "rb") as wav:
        rate = wav.getframerate()
        samples = array.array("h", wav.readframes(wav.getnframes()))
    if sys.byteorder == "big":
        samples.byteswap()  # WAV is little-endian
    window = rate // 50
    spans: list[tuple[float, float]] = []
    for i in range(0, len(samples) - window + 1, window):
        rms = math.sqrt(sum(s * s for s in samples[i : i + window]) / window) / 32768
        if rms <= threshold:
            continue
        start, end = i / rate, (i + window) / rate
        if spans and start - spans[-1][1] < gap:
            spans[-1] = (spans[-1][0], end)
        else:
            spans.append((start, end))
    return spans


@pytest.fixture(scope="session")
def mic_wav() -> Path:
    """The fake-mic WAV under tests/artifacts/, built once."""
    return make_mic_wav()
