"""The one typed configuration object, and how flags, environment and a TOML file make it.

Precedence is flag > environment (``VOICEKIOSK_<OPTION>``) > config file > default. Every value
is parsed and checked by the same function whatever its source, so a bad value always gives
one line naming the option and where it came from.
"""

from __future__ import annotations

import dataclasses
import os
import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit

import platformdirs

from voicekiosk import net
from voicekiosk.errors import ConfigError

SdpMode = Literal["server", "browser"]

DEFAULT_INSTRUCTIONS = (
    "You are a friendly voice assistant on a public screen. Keep answers short and spoken-style: "
    "one to three sentences. If you are interrupted, stop and listen."
)
VOICES = ("alloy", "ash", "ballad", "coral", "echo", "sage", "shimmer", "verse", "marin", "cedar")
LOCAL_CONFIG = "voicekiosk.toml"


def default_data_dir() -> Path:
    return Path(platformdirs.user_data_dir("voicekiosk", appauthor=False))


@dataclass(frozen=True, kw_only=True)
class Settings:
    """Everything voicekiosk is told. Defaults live here and nowhere else."""

    host: str = "0.0.0.0"
    port: int = 8116
    openai_base_url: str = "https://api.openai.com/v1"
    model: str = "gpt-realtime-2.1"
    voice: str = "marin"
    instructions: str = DEFAULT_INSTRUCTIONS
    sdp: SdpMode = "server"
    token_ttl: int = 60
    transcription_model: str = "gpt-4o-mini-transcribe"
    turn_detection: str = "server_vad"
    noise_reduction: str = "far_field"
    upstream_timeout: float = 15.0
    ca_bundle: Path | None = None
    autostart: bool = False
    idle_timeout: int = 120
    demo: bool = False
    verbosity: int = 0
    data_dir: Path = field(default_factory=default_data_dir)
    http_port: int = 8117
    san: tuple[str, ...] = ()
    cert: Path | None = None
    key: Path | None = None
    tls: bool = True
    open: bool = False
    max_calls: int = 4
    rate: int = 10
    browser: str | None = None
    config_path: Path | None = None
    api_key_file: Path | None = None
    api_key: str | None = field(default=None, repr=False)
    # Where each value came from ("default", "flag --port", "env VOICEKIOSK_PORT", "file x.toml").
    sources: Mapping[str, str] = field(default_factory=dict, repr=False, compare=False)

    @property
    def binds_all(self) -> bool:
        """Listening on every address (0.0.0.0 or ::) rather than one named host."""
        return self.host.strip("[]") in ("0.0.0.0", "::", "")

    @property
    def calls_url(self) -> str:
        return f"{self.openai_base_url}/realtime/calls"

    @property
    def has_setup_site(self) -> bool:
        """The plain-HTTP setup site runs: HTTPS from the local CA, and an ``--http-port``."""
        return self.tls and bool(self.http_port) and self.cert is None

    def page_url(self, host: str, path: str = "/") -> str:
        """The talking page's URL on ``host``."""
        return net.url("https" if self.tls else "http", host, self.port, path)

    def setup_url(self, host: str) -> str | None:
        """The setup site's URL on ``host``, or None when there is none."""
        return net.url("http", host, self.http_port) if self.has_setup_site else None

    def describe(self) -> list[tuple[str, str, str]]:
        """(option, value, source) rows with every secret masked."""
        rows = []
        for f in dataclasses.fields(self):
            if f.name in ("sources", "api_key"):
                continue
            value = getattr(self, f.name)
            if isinstance(value, tuple):
                value = ", ".join(value)
            rows.append((f.name, "" if value is None else str(value), self.sources.get(f.name, "default")))
        rows.append(("api_key", mask_secret(self.api_key), self.sources.get("api_key", "not set")))
        return rows


def mask_secret(secret: str | None) -> str:
    """``sk-…1a2b``: enough to tell keys apart, useless to anyone who reads it."""
    if not secret:
        return "(not set)"
    prefix = secret.split("-", 1)[0] + "-" if secret.startswith("sk-") else secret[:3]
    return f"{prefix}…{secret[-4:]}" if len(secret) > 12 else "…"


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


def _int(lo: int, hi: int) -> Parser:
    @parser("INTEGER")
    def parse(raw: Any) -> int:
        if isinstance(raw, bool):
            raise ValueError("expected a whole number")
        try:
            value = int(raw)
        except (TypeError, ValueError):
            raise ValueError(f"{raw!r} is not a whole number") from None
        if not lo <= value <= hi:
            raise ValueError(f"{value} is out of range ({lo}-{hi})")
        return value

    return parse


def _float(lo: float, hi: float) -> Parser:
    @parser("NUMBER")
    def parse(raw: Any) -> float:
        try:
            value = float(raw)
        except (TypeError, ValueError):
            raise ValueError(f"{raw!r} is not a number") from None
        if not lo <= value <= hi:
            raise ValueError(f"{value} is out of range ({lo}-{hi})")
        return value

    return parse


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
    Option("model", _text, "Realtime model.", "--model"),
    Option("voice", _choice(*VOICES), "The agent's voice.", "--voice"),
    Option("instructions", _instructions, "The agent's instructions: text, or @path to a file.", "--instructions"),
    Option("sdp", _choice("server", "browser"), "Who posts the SDP offer to OpenAI: server or browser.", "--sdp"),
    Option("token_ttl", _int(10, 7200), "Seconds an ephemeral key may start sessions (10-7200)."),
    Option("transcription_model", _text, "Model that transcribes what the user says."),
    Option("turn_detection", _choice("server_vad", "semantic_vad"), "How the model detects the end of a turn."),
    Option("noise_reduction", _choice("far_field", "near_field", "off"), "Input noise reduction."),
    Option("upstream_timeout", _float(1, 120), "Seconds to wait for OpenAI before giving up."),
    Option("ca_bundle", _existing_file, "CA bundle (PEM) to verify the OpenAI endpoint with."),
    Option("autostart", _bool, "Start talking on page load, without a click.", "--autostart", is_flag=True),
    Option("idle_timeout", _int(0, 86400), "Hang up after this many seconds of silence (0: never)."),
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
    Option("api_key_file", _existing_file, "File holding the OpenAI API key (instead of OPENAI_API_KEY)."),
)
OPTIONS_BY_NAME = {option.name: option for option in OPTIONS}

# Environment names that other tools already use for the same thing.
ENV_ALIASES = {"openai_base_url": "OPENAI_BASE_URL"}


def _parse(option: Option, raw: Any, source: str) -> Any:
    try:
        return option.parse(raw)
    except ValueError as exc:
        where = "" if source.startswith("flag") else f" (from {source})"
        raise ConfigError(f"{option.label}: {exc}{where}") from None


def read_config_file(path: Path) -> dict[str, Any]:
    """The TOML file's options, keys spelled as in the file (dashes or underscores)."""
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigError(f"--config: cannot read {path}: {exc.strerror or exc}") from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ConfigError(f"--config: {path} is not valid TOML: {exc}") from None
    data = data.get("voicekiosk", data)
    unknown = sorted(k for k in data if k.replace("-", "_") not in OPTIONS_BY_NAME)
    if unknown:
        raise ConfigError(f"--config: {path}: unknown option {unknown[0]!r}")
    return {k.replace("-", "_"): v for k, v in data.items()}


def load_settings(
    flags: Mapping[str, Any] | None = None,
    env: Mapping[str, str] | None = None,
    config_path: Path | None = None,
) -> Settings:
    """Build the Settings from command-line values (None = not given), environment and file.

    Raises:
      ConfigError: a value is invalid; the message names the option and its source.
    """
    flags = {k: v for k, v in (flags or {}).items() if v is not None and v != ()}
    env = os.environ if env is None else env
    config_source = "flag --config"
    if config_path is None and env.get("VOICEKIOSK_CONFIG"):
        config_path, config_source = Path(env["VOICEKIOSK_CONFIG"]).expanduser(), "env VOICEKIOSK_CONFIG"
    if config_path is None and Path(LOCAL_CONFIG).is_file():
        config_path, config_source = Path(LOCAL_CONFIG), "default"
    file_values = read_config_file(config_path) if config_path else {}

    values: dict[str, Any] = {}
    sources: dict[str, str] = {}
    for option in OPTIONS:
        env_names = [option.env] + ([ENV_ALIASES[option.name]] if option.name in ENV_ALIASES else [])
        env_name = next((n for n in env_names if env.get(n, "").strip()), None)
        if option.name in flags:
            raw, source = flags[option.name], f"flag {option.label}"
        elif env_name:
            raw, source = env[env_name], f"env {env_name}"
        elif option.name in file_values:
            raw, source = file_values[option.name], f"file {config_path}"
        else:
            continue
        values[option.name] = _parse(option, raw, source)
        sources[option.name] = source

    api_key = env.get("OPENAI_API_KEY", "").strip()
    if api_key:
        sources["api_key"] = "env OPENAI_API_KEY"
    elif "api_key_file" in values:
        api_key = _read_key_file(values["api_key_file"])
        sources["api_key"] = f"file {values['api_key_file']}"
    if config_path:
        sources["config_path"] = config_source
    settings = Settings(**values, api_key=api_key or None, config_path=config_path, sources=sources)
    _check_combination(settings)
    return settings


def _read_key_file(path: Path) -> str:
    try:
        key = path.read_text(encoding="utf-8").strip()
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"api_key_file: cannot read {path}: {exc}") from None
    if not key or any(c.isspace() for c in key):
        raise ConfigError(f"api_key_file: {path} must hold exactly one key")
    return key


def _check_combination(settings: Settings) -> None:
    if (settings.cert is None) != (settings.key is None):
        raise ConfigError("--cert and --key go together: give both or neither")
    if not settings.tls and not net.is_loopback(settings.host):
        raise ConfigError(
            f"--no-tls: browsers allow the microphone over plain HTTP only on this machine; "
            f"add --host 127.0.0.1 or keep TLS (host is {settings.host})"
        )
    if settings.http_port and settings.http_port == settings.port:
        raise ConfigError(f"--http-port: {settings.http_port} is already --port")
