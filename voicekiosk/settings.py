"""The one typed configuration object, and how flags, environment and a TOML file make it.

Precedence is flag > environment (``VOICEKIOSK_<OPTION>``) > config file > default. Every value
is parsed and checked by the same function whatever its source, so a bad value always gives
one line naming the option and where it came from.
"""

from __future__ import annotations

import dataclasses
import os
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import platformdirs

from voicekiosk import net
from voicekiosk.brand.config import Brand, parse_brand
from voicekiosk.combinations import check_combination, engine_for
from voicekiosk.errors import ConfigError
from voicekiosk.hours import Hours
from voicekiosk.ledger.prices import Price, parse_prices
from voicekiosk.options import OPTIONS, OPTIONS_BY_NAME, Option
from voicekiosk.tools.declarations import TABLES, parse_tools
from voicekiosk.tools.spec import ToolsConfig

SdpMode = Literal["server", "browser"]
EngineName = Literal["realtime", "live"]
DEFAULT_MODELS: dict[str, str] = {"realtime": "gpt-realtime-2.1", "live": "gpt-live-1.1"}
# GPT-Live runs function tools through Responses delegation, which needs a backend model: this one
# (the model OpenAI's live-delegation guide uses) unless ``live_delegation_model`` names another.
DEFAULT_DELEGATION_MODEL = "gpt-5.6-terra"

DEFAULT_INSTRUCTIONS = (
    "You are a friendly voice assistant on a public screen. Keep answers short and spoken-style: "
    "one to three sentences. If you are interrupted, stop and listen."
)
LOCAL_CONFIG = "voicekiosk.toml"


def default_data_dir() -> Path:
    return Path(platformdirs.user_data_dir("voicekiosk", appauthor=False))


@dataclass(frozen=True, kw_only=True)
class Settings:
    """Everything voicekiosk is told. Defaults live here and nowhere else."""

    host: str = "0.0.0.0"
    port: int = 8116
    openai_base_url: str = "https://api.openai.com/v1"
    engine: EngineName = "realtime"
    model: str = ""  # empty: DEFAULT_MODELS[engine]
    voice: str = "marin"
    instructions: str = DEFAULT_INSTRUCTIONS
    greeting: str = ""
    languages: tuple[str, ...] = ("en",)  # codes of static/i18n/ tables; the first is the default
    sdp: SdpMode = "server"
    token_ttl: int = 60
    transcription_model: str = "gpt-4o-mini-transcribe"
    turn_detection: str = "server_vad"
    noise_reduction: str = "far_field"
    upstream_timeout: float = 15.0
    ca_bundle: Path | None = None
    hours: Hours | None = None  # None: always open
    autostart: bool = False
    idle_timeout: int = 120
    dim_after: float = 0.0  # minutes the attract screen shows before it dims (0: never)
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
    budget_per_day: float | None = None  # USD; None: no limit
    max_call_minutes: float = 15.0
    keep_transcripts: bool = False
    transcript_days: int = 30
    prices: Mapping[str, Price] = field(default_factory=dict)  # the config file's [prices."model"] tables
    live_standby: int = 0
    live_delegation_model: str | None = None
    live_delegation_instructions: str | None = None
    live_delegation_tools: tuple[str, ...] = ()
    tools: ToolsConfig = field(default_factory=ToolsConfig)  # the config file's [[tools]], [[mcp]], ...
    brand: Brand | None = None  # the config file's [brand]
    api_key: str | None = field(default=None, repr=False)
    # Where each value came from ("default", "flag --port", "env VOICEKIOSK_PORT", "file x.toml").
    sources: Mapping[str, str] = field(default_factory=dict, repr=False, compare=False)

    def __post_init__(self) -> None:
        if not self.model:
            object.__setattr__(self, "model", DEFAULT_MODELS[self.engine])

    @property
    def runs_tools(self) -> bool:
        """Tools run on this server over each call's sideband: it made the call (``--sdp server``,
        which GPT-Live always is), so it knows the call's id."""
        return self.sdp == "server"

    @property
    def delegation_model(self) -> str | None:
        """GPT-Live's Responses backend model: the configured one, else the default when tools run
        here (their function calls go through the backend); None: client delegation."""
        if self.live_delegation_model is None and self.tools.runs_here and self.runs_tools:
            return DEFAULT_DELEGATION_MODEL
        return self.live_delegation_model

    @property
    def binds_all(self) -> bool:
        """Listening on every address (0.0.0.0 or ::) rather than one named host."""
        return self.host.strip("[]") in ("0.0.0.0", "::", "")

    @property
    def calls_url(self) -> str:
        """Realtime's calls endpoint (pages post offers there in browser-SDP mode)."""
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
            if f.name == "brand" and self.brand is not None:
                source = self.sources.get("brand", "default")
                rows += [(f"brand.{key}", shown, source) for key, shown in self.brand.describe()]
                continue
            if f.name == "hours":
                rows += self._hours_rows()
                continue
            if f.name == "prices":
                source = self.sources.get("prices", "default")
                rows += [(f"prices.{model}", _price_row(price), source) for model, price in self.prices.items()]
                continue
            value = getattr(self, f.name)
            if isinstance(value, tuple):
                value = ", ".join(value)
            if f.name == "tools" and self.tools.runs_here and not self.runs_tools:
                value = f"{value} (not run: tools need --sdp server)"
            if f.name == "budget_per_day" and value is None:
                value = "none (no limit)"
            if f.name == "live_delegation_model" and value is None and self.engine == "live" and self.delegation_model:
                value = f"{self.delegation_model} (the default: tools run through it)"
            rows.append((f.name, "" if value is None else str(value), self.sources.get(f.name, "default")))
        rows.append(("api_key", mask_secret(self.api_key), self.sources.get("api_key", "not set")))
        return rows

    def _hours_rows(self) -> list[tuple[str, str, str]]:
        source = self.sources.get("hours", "default")
        if self.hours is None:
            return [("hours", "always open", source)]
        rows = [(f"hours {days}", spans, source) for days, spans in self.hours.groups()]
        zone = ("hours timezone", self.hours.timezone or "this machine's local time", source)
        return [*(rows or [("hours", "closed", source)]), zone]


def _price_row(price: Price) -> str:
    """``text_in 4.0, audio_out 64.0 (USD per 1M tokens)`` for ``voicekiosk config``."""
    named = [f"{key} {value}" for key, value in dataclasses.asdict(price).items() if isinstance(value, float)]
    return ", ".join(named)


def mask_secret(secret: str | None) -> str:
    """``sk-…1a2b``: enough to tell keys apart, useless to anyone who reads it."""
    if not secret:
        return "(not set)"
    prefix = secret.split("-", 1)[0] + "-" if secret.startswith("sk-") else secret[:3]
    return f"{prefix}…{secret[-4:]}" if len(secret) > 12 else "…"


# Environment names that other tools already use for the same thing.
ENV_ALIASES = {"openai_base_url": "OPENAI_BASE_URL"}


def _parse(option: Option, raw: Any, source: str) -> Any:
    try:
        return option.parse(raw)
    except ValueError as exc:
        where = "" if source.startswith("flag") else f" (from {source})"
        raise ConfigError(f"{option.label}: {exc}{where}") from None


def read_config_file(path: Path) -> dict[str, Any]:
    """The TOML file's options, keys spelled as in the file (dashes or underscores); its tool
    tables (``tools.declarations.TABLES``) as ``tools``, its ``[brand]`` as ``brand``."""
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigError(f"--config: cannot read {path}: {exc.strerror or exc}") from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ConfigError(f"--config: {path} is not valid TOML: {exc}") from None
    data = dict(data.get("voicekiosk", data))
    tables = {table: data.pop(table) for table in TABLES if table in data}
    typed: dict[str, Any] = {"tools": parse_tools(tables, path)} if tables else {}
    if "brand" in data:
        typed["brand"] = parse_brand(data.pop("brand"), path)
    if "prices" in data:
        typed["prices"] = parse_prices(data.pop("prices"), path)
    data = _flatten(data)
    unknown = sorted(k for k in data if k.replace("-", "_").replace(".", "_") not in OPTIONS_BY_NAME)
    if unknown:
        raise ConfigError(f"--config: {path}: unknown option {unknown[0]!r}")
    return {k.replace("-", "_").replace(".", "_"): v for k, v in data.items()} | typed


def _flatten(data: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """``[live.delegation] model = …`` as ``live.delegation.model``: tables are option prefixes."""
    flat: dict[str, Any] = {}
    for key, value in data.items():
        if isinstance(value, dict) and (prefix + key).replace("-", "_").replace(".", "_") not in OPTIONS_BY_NAME:
            flat |= _flatten(value, f"{prefix}{key}.")
        else:
            flat[prefix + key] = value
    return flat


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

    for table in ("tools", "brand", "prices"):  # only a file declares these
        if table in file_values:
            values[table], sources[table] = file_values[table], f"file {config_path}"
    api_key = env.get("OPENAI_API_KEY", "").strip()
    if api_key:
        sources["api_key"] = "env OPENAI_API_KEY"
    elif "api_key_file" in values:
        api_key = _read_key_file(values["api_key_file"])
        sources["api_key"] = f"file {values['api_key_file']}"
    if config_path:
        sources["config_path"] = config_source
    values["engine"] = engine_for(values.get("engine"), values.get("model"), sources)
    settings = Settings(**values, api_key=api_key or None, config_path=config_path, sources=sources)
    check_combination(settings)
    return settings


def _read_key_file(path: Path) -> str:
    try:
        key = path.read_text(encoding="utf-8").strip()
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"api_key_file: cannot read {path}: {exc}") from None
    if not key or any(c.isspace() for c in key):
        raise ConfigError(f"api_key_file: {path} must hold exactly one key")
    return key
