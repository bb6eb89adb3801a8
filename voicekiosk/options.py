"""Every option voicekiosk takes: its name, its parser (raw flag, environment or TOML value to a
typed value, or a ValueError saying why not), its help and how the command line spells it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from voicekiosk.hours import parse_hours
from voicekiosk.languages import check_codes

VOICES = ("alloy", "ash", "ballad", "coral", "echo", "sage", "shimmer", "verse", "marin", "cedar")
# GPT-Live's voices that OpenAI was seen to accept (openai-live.md §1.7, aplisay #306): the SDK lists
# more, but a voice the API refuses fails every call, so only these are offered.
LIVE_VOICES = (
    "alloy", "ash", "ballad", "beacon", "bossa", "cedar", "cinder", "coral", "delta", "echo", "gleam",
    "marin", "meridian", "quartz", "ripple", "sage", "shimmer", "stone", "tempo", "verse", "vesper", "willow",
)  # fmt: skip
ENGINES = ("realtime", "live")
LIVE_TOOLS = ("web_search",)  # hosted tools a Live delegation backend may use (§3.2)


# -- parsers: raw value (str from flag/env, or a TOML value) -> typed value, or ValueError --------


@dataclass(frozen=True)
class Parser:
    """Turns a raw value into a typed one (or raises ValueError); ``metavar`` is how help shows it."""

    parse: Callable[[Any], Any]
    metavar: str

    def __call__(self, raw: Any) -> Any:
        return self.parse(raw)


def parser(metavar: str) -> Callable[[Callable[[Any], Any]], Parser]:
    return lambda parse: Parser(parse, metavar)


def _number(convert: Callable[[Any], Any], lo: float, hi: float, metavar: str, noun: str) -> Parser:
    @parser(metavar)
    def parse(raw: Any) -> Any:
        if isinstance(raw, bool):  # TOML true is no number
            raise ValueError(f"expected {noun}")
        try:
            value = convert(raw)
        except (TypeError, ValueError):
            raise ValueError(f"{raw!r} is not {noun}") from None
        if not lo <= value <= hi:
            raise ValueError(f"{value} is out of range ({lo}-{hi})")
        return value

    return parse


def _int(lo: int, hi: int) -> Parser:
    return _number(int, lo, hi, "INTEGER", "a whole number")


def _float(lo: float, hi: float) -> Parser:
    return _number(float, lo, hi, "NUMBER", "a number")


@parser("BOOLEAN")
def _bool(raw: Any) -> bool:
    if isinstance(raw, bool):
        return raw
    text = str(raw).strip().lower()
    if text in ("1", "true", "yes", "on"):
        return True
    if text in ("0", "false", "no", "off", ""):
        return False
    raise ValueError(f"{raw!r} is not true/false")


def _choice(*choices: str) -> Parser:
    @parser("[" + "|".join(choices) + "]")
    def parse(raw: Any) -> str:
        value = str(raw).strip().lower()
        if value not in choices:
            raise ValueError(f"{raw!r} is not one of: {', '.join(choices)}")
        return value

    return parse


def _nonempty(raw: Any) -> str:
    if not isinstance(raw, str) or not raw.strip():
        raise ValueError("must not be empty")
    return raw.strip()


_text = Parser(_nonempty, "TEXT")


@parser("TEXT|@FILE")
def _instructions(raw: Any) -> str:
    text = _nonempty(raw)
    if text.startswith("@"):
        path = Path(text[1:]).expanduser()
        try:
            text = path.read_text(encoding="utf-8").strip()
        except (OSError, UnicodeDecodeError) as exc:
            raise ValueError(f"cannot read {path}: {getattr(exc, 'strerror', None) or exc}") from None
        if not text:
            raise ValueError(f"{path} is empty")
    return text


@parser("TEXT|@FILE")
def _optional_text(raw: Any) -> str:
    """Like ``_instructions`` but may be empty (off)."""
    if isinstance(raw, str) and not raw.strip():
        return ""
    return str(_instructions(raw))


def _choices(*choices: str) -> Parser:
    """A list of names from ``choices`` (TOML array, or comma-separated text)."""
    one = _choice(*choices)

    @parser("NAME")
    def parse(raw: Any) -> tuple[str, ...]:
        items = raw if isinstance(raw, list | tuple) else str(raw).split(",")
        return tuple(dict.fromkeys(one(item) for item in items if str(item).strip()))

    return parse


@parser("CODE")
def _languages(raw: Any) -> tuple[str, ...]:
    """Language codes (TOML array, or comma-separated text), each one we ship a table for."""
    return check_codes(raw if isinstance(raw, list | tuple) else str(raw).split(","))


@parser("URL")
def _url(raw: Any) -> str:
    text = _nonempty(raw).rstrip("/")
    parts = urlsplit(text)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"{raw!r} is not an http:// or https:// URL")
    if parts.query or parts.fragment:
        raise ValueError(f"{raw!r} must not have a query or fragment")
    return text


@parser("PATH")
def _path(raw: Any) -> Path:
    return Path(_nonempty(raw)).expanduser()


@parser("FILE")
def _existing_file(raw: Any) -> Path:
    path = Path(_nonempty(raw)).expanduser()
    if not path.is_file():
        raise ValueError(f"{path} is not a readable file")
    return path


def _one_host(raw: Any) -> str:
    text = _nonempty(raw)
    if any(c.isspace() for c in text) or "/" in text:
        raise ValueError(f"{raw!r} is not a host name or address")
    return text.strip("[]")


_host = Parser(_one_host, "HOST")


@parser("NAME")
def _names(raw: Any) -> tuple[str, ...]:
    items = raw if isinstance(raw, list | tuple) else str(raw).split(",")
    return tuple(_one_host(item) for item in items if str(item).strip())


@dataclass(frozen=True)
class Option:
    """One setting: its parser, its help and how the CLI spells it."""

    name: str
    parse: Parser
    help: str
    flag: str | None = None  # None: env and file only
    is_flag: bool = False  # a --x/--no-x switch on the command line
    multiple: bool = False

    @property
    def env(self) -> str:
        return "VOICEKIOSK_" + self.name.upper()

    @property
    def label(self) -> str:
        return self.flag or self.name


OPTIONS: tuple[Option, ...] = (
    Option("host", _host, "Address to listen on (0.0.0.0: every IPv4 address).", "--host"),
    Option("port", _int(1, 65535), "HTTPS port of the page and the API.", "--port"),
    Option(
        "openai_base_url",
        _url,
        "OpenAI API base URL, including /v1 (also OPENAI_BASE_URL).",
        "--openai-base-url",
    ),
    Option(
        "engine",
        _choice(*ENGINES),
        "Voice API: realtime, or live (GPT-Live; a gpt-live-* model implies it).",
        "--engine",
    ),
    Option("model", _text, "The voice model (default: the engine's).", "--model"),
    Option("voice", _choice(*sorted({*VOICES, *LIVE_VOICES})), "The agent's voice.", "--voice"),
    Option("instructions", _instructions, "The agent's instructions: text, or @path to a file.", "--instructions"),
    Option(
        "greeting", _optional_text, "What the agent opens a visitor's call with (empty: wait for them).", "--greeting"
    ),
    Option("languages", _languages, "Languages the page offers, the first by default (en, fr, de, es)."),
    Option("sdp", _choice("server", "browser"), "Who posts the SDP offer to OpenAI: server or browser.", "--sdp"),
    Option("token_ttl", _int(10, 7200), "Seconds an ephemeral key may start sessions (10-7200)."),
    Option("transcription_model", _text, "Model that transcribes what the user says."),
    Option("turn_detection", _choice("server_vad", "semantic_vad"), "How the model detects the end of a turn."),
    Option("noise_reduction", _choice("far_field", "near_field", "off"), "Input noise reduction."),
    Option("upstream_timeout", _float(1, 120), "Seconds to wait for OpenAI before giving up."),
    Option("ca_bundle", _existing_file, "CA bundle (PEM) to verify the OpenAI endpoint with."),
    Option(
        "hours",
        Parser(parse_hours, "TABLE"),
        'Opening hours: { mon-fri = "09:00-17:00", sat = "10:00-14:00", timezone = "Europe/Paris" } (none: open).',
    ),
    Option("autostart", _bool, "Start talking on page load, without a click.", "--autostart", is_flag=True),
    Option("idle_timeout", _int(0, 86400), "Hang up after this many seconds of silence (0: never)."),
    Option("dim_after", _float(0, 1440), "Dim the waiting screen after this many minutes (0: never)."),
    Option("demo", _bool, "Talk to a local fake agent instead of OpenAI (no key, no network).", "--demo", True),
    Option("verbosity", _int(-2, 3), "Terminal detail: -2 (errors only) to 3."),
    Option("data_dir", _path, "Where the CA, certificates and access token are kept.", "--data-dir"),
    Option("http_port", _int(0, 65535), "Plain-HTTP setup page port (0: off).", "--http-port"),
    Option("san", _names, "Extra name or address for the certificate (repeatable).", "--san", multiple=True),
    Option("cert", _existing_file, "Your own certificate (PEM) instead of the local CA's.", "--cert"),
    Option("key", _existing_file, "Private key (PEM) for --cert.", "--key"),
    Option("tls", _bool, "Serve HTTPS (--no-tls only on loopback).", "--tls", is_flag=True),
    Option("open", _bool, "Let any device on the network talk, with no access token.", "--open", True),
    Option("max_calls", _int(1, 100_000), "Most calls at once.", "--max-calls"),
    Option("rate", _int(1, 10000), "New sessions per client per minute.", "--rate"),
    Option("browser", _text, "Chrome/Chromium executable for kiosk mode.", "--browser"),
    Option("live_standby", _int(0, 3600), "GPT-Live 1.1: seconds of silence before the cheaper standby (0: off)."),
    Option("live_delegation_model", _text, "GPT-Live: the Responses model it delegates hard questions to."),
    Option("live_delegation_instructions", _instructions, "GPT-Live: that backend's instructions (text or @file)."),
    Option("live_delegation_tools", _choices(*LIVE_TOOLS), "GPT-Live: hosted tools of that backend (web_search)."),
    Option("api_key_file", _existing_file, "File holding the OpenAI API key (instead of OPENAI_API_KEY)."),
    Option(
        "budget_per_day",
        _float(0, 1_000_000),
        "USD a day's calls may cost (estimated); then new calls are refused until the next day (none: no limit).",
        "--budget-per-day",
    ),
    Option("max_call_minutes", _float(0.05, 1440), "Longest a call may last, in minutes: then it is ended politely."),
    Option("keep_transcripts", _bool, "Keep what was said in the call record (for transcript_days)."),
    Option("transcript_days", _int(1, 3650), "Days kept transcripts are kept."),
)
OPTIONS_BY_NAME = {option.name: option for option in OPTIONS}
