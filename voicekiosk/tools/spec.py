"""The tools the config file declares, as typed values (``declarations`` reads and checks them).
Nothing here runs a tool, and secrets stay references (``env:NAME``) until a tool is made."""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from voicekiosk.errors import ConfigError

NAME = re.compile(r"[A-Za-z][A-Za-z0-9_-]{0,63}")  # OpenAI's function names: letters, digits, _ and -
BUILTINS = ("lookup", "show", "end_conversation")  # the built-in tools there are


@dataclass(frozen=True)
class Secret:
    """A value kept outside the config file: ``env:NAME`` (read when the tool is made)."""

    env: str

    def value(self, environ: Mapping[str, str] | None = None) -> str:
        """Raises ConfigError when the variable is unset or empty."""
        value = (os.environ if environ is None else environ).get(self.env, "")
        if not value:
            raise ConfigError(f"${self.env} is not set")
        return value

    def __str__(self) -> str:
        return f"env:{self.env}"


@dataclass(frozen=True)
class WebhookSpec:
    """``[[tools]]``: an HTTP endpoint the server posts the arguments to; the agent never sees it."""

    name: str
    description: str
    parameters: Mapping[str, Any]
    url: str
    headers: tuple[tuple[str, Secret], ...] = ()
    timeout: float = 5.0


@dataclass(frozen=True)
class McpSpec:
    """``[[mcp]]`` run by this server: a local command (stdio) or a streamable-HTTP ``url``."""

    name: str
    command: tuple[str, ...] = ()
    url: str | None = None
    allowed_tools: tuple[str, ...] | None = None  # None: all it lists
    headers: tuple[tuple[str, Secret], ...] = ()
    timeout: float = 10.0


@dataclass(frozen=True)
class RemoteMcpSpec:
    """``[[mcp]]`` with ``server_url``: OpenAI reaches it itself (a Realtime ``mcp`` tool). It has no
    credential: OpenAI shows the session's tools to the page (``declarations`` refuses one)."""

    name: str
    server_url: str
    require_approval: str = "never"
    allowed_tools: tuple[str, ...] | None = None
    description: str | None = None  # the session's ``server_description``


@dataclass(frozen=True)
class ToolsConfig:
    """Everything the agent may use besides talking."""

    webhooks: tuple[WebhookSpec, ...] = ()
    mcp: tuple[McpSpec, ...] = ()
    remote_mcp: tuple[RemoteMcpSpec, ...] = ()
    knowledge: Path | None = None
    builtins: frozenset[str] = field(default_factory=frozenset)

    @property
    def enabled_builtins(self) -> tuple[str, ...]:
        """The built-in tools on: ``lookup`` only with a knowledge folder."""
        return tuple(b for b in BUILTINS if b in self.builtins and (b != "lookup" or self.knowledge is not None))

    @property
    def runs_here(self) -> bool:
        """Some tool runs on this server (over a call's sideband), not at OpenAI."""
        return bool(self.webhooks or self.mcp or self.enabled_builtins)

    def __str__(self) -> str:
        """One line for ``voicekiosk config``: what is declared, by name (no secret, no URL)."""
        parts = [f"{kind} {', '.join(names)}" for kind, names in (
            ("webhooks", [w.name for w in self.webhooks]),
            ("mcp", [m.name for m in self.mcp]),
            ("remote mcp", [r.name for r in self.remote_mcp]),
            ("built-ins", list(self.enabled_builtins)),
        ) if names]  # fmt: skip
        return "; ".join(parts) or "none"

    def __bool__(self) -> bool:
        return bool(self.webhooks or self.mcp or self.remote_mcp or self.enabled_builtins)
