"""Which settings go together: the engine a model's name implies, the options only one engine
has, and the pairs that cannot be (each a one-line ``ConfigError`` naming the option)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from voicekiosk import net
from voicekiosk.errors import ConfigError
from voicekiosk.options import LIVE_VOICES, VOICES

if TYPE_CHECKING:
    from voicekiosk.settings import EngineName, Settings


def engine_for(engine: EngineName | None, model: str | None, sources: dict[str, str]) -> EngineName:
    """The engine asked for, or the one the model's name implies; a model of the other engine's is
    an error (other names, e.g. an Azure deployment's, are taken as the engine's)."""
    implied: EngineName | None = None
    if model is not None:
        name = model.lower()
        implied = "live" if name.startswith("gpt-live") else "realtime" if "realtime" in name else None
    if engine is None:
        if implied is not None and model is not None:
            sources["engine"] = f"implied by model {model}"
        return implied or "realtime"
    if implied is not None and implied != engine:
        raise ConfigError(
            f"--engine: {engine} cannot run {model!r}, a {implied} model "
            f"(engine from {sources['engine']}, model from {sources['model']}); drop one of them"
        )
    return engine


def check_combination(settings: Settings) -> None:
    """Refuse settings that each pass alone but not together."""
    if (settings.cert is None) != (settings.key is None):
        raise ConfigError("--cert and --key go together: give both or neither")
    if not settings.tls and not net.is_loopback(settings.host):
        raise ConfigError(
            f"--no-tls: browsers allow the microphone over plain HTTP only on this machine; "
            f"add --host 127.0.0.1 or keep TLS (host is {settings.host})"
        )
    if settings.http_port and settings.http_port == settings.port:
        raise ConfigError(f"--http-port: {settings.http_port} is already --port")
    if settings.budget_per_day is not None and settings.sdp == "browser":
        raise ConfigError(
            "budget_per_day: --sdp browser lets each page post its own offer and report its own usage, "
            "so the server cannot hold it to a budget; use --sdp server (the default) or drop budget_per_day"
        )
    if settings.engine == "live":
        _check_live(settings)
    else:
        live_only = [o for o in LIVE_ONLY if o in settings.sources]
        if live_only:
            raise ConfigError(f"{live_only[0]}: only GPT-Live has it (--engine live); the engine is realtime")
        if settings.voice not in VOICES:
            raise ConfigError(f"--voice: {settings.voice!r} is a GPT-Live voice; Realtime has {', '.join(VOICES)}")


LIVE_ONLY = ("live_standby", "live_delegation_model", "live_delegation_instructions", "live_delegation_tools")
# Realtime's session settings: GPT-Live decides these itself (turns, transcription) or has no such
# thing (browser keys). Set with Live they do nothing, which the banner says (not an error: a file
# written for Realtime still serves a try of Live with --model gpt-live-1.1).
REALTIME_ONLY = ("transcription_model", "turn_detection", "noise_reduction", "token_ttl")


def ignored(settings: Settings) -> list[str]:
    """The options given that the chosen engine does not use (Realtime has every other one)."""
    if settings.engine == "live":
        return [o for o in REALTIME_ONLY if o in settings.sources]
    return []


def _check_live(settings: Settings) -> None:
    if settings.sdp == "browser":
        raise ConfigError(
            "--sdp browser: GPT-Live gives browsers no keys of their own, so this server must post "
            "the page's offer itself; use --sdp server (the default) with --engine live"
        )
    if remote := settings.tools.remote_mcp:  # openai-live.md §3.2: no mcp tool type
        raise ConfigError(
            f"[[mcp]] {remote[0].name}: server_url needs the realtime engine (GPT-Live has no mcp tool for "
            'OpenAI to reach a server itself); declare it with url = "..." so this server calls it'
        )
    if settings.voice not in LIVE_VOICES:
        raise ConfigError(f"--voice: GPT-Live refuses {settings.voice!r}; it has {', '.join(LIVE_VOICES)}")
    if settings.live_standby and settings.model == "gpt-live-1":
        raise ConfigError("live_standby: gpt-live-1 has no standby; use gpt-live-1.1 or set it to 0")
    backend = ("live_delegation_instructions", "live_delegation_tools")
    if settings.delegation_model is None and any(o in settings.sources for o in backend):
        raise ConfigError("live_delegation_model: name the backend model the delegation settings are for")
