"""Reading the config file's tool tables (``[[tools]]``, ``[[mcp]]``, ``[knowledge]``, ``[builtins]``)
into a ``ToolsConfig``: every key checked, one line naming the tool when something is wrong."""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from voicekiosk.errors import ConfigError
from voicekiosk.tools.spec import BUILTINS, NAME, McpSpec, RemoteMcpSpec, Secret, ToolsConfig, WebhookSpec

TABLES = ("tools", "mcp", "knowledge", "builtins")  # the config file's keys that are read here


def parse_tools(data: Mapping[str, Any], source: Path) -> ToolsConfig:
    """The ``TABLES`` of a config file (relative paths from its folder).

    Raises:
      ConfigError: one line naming the table, the tool and what is wrong.
    """
    webhooks = tuple(_webhook(entry, i) for i, entry in enumerate(_array(data, "tools")))
    local: list[tuple[int, Any]] = []
    remote: list[tuple[int, Any]] = []
    for i, entry in enumerate(_array(data, "mcp")):
        (remote if isinstance(entry, dict) and "server_url" in entry else local).append((i, entry))
    knowledge = _knowledge(data.get("knowledge"), source.parent)
    config = ToolsConfig(
        webhooks=webhooks,
        mcp=tuple(_mcp(entry, i) for i, entry in local),
        remote_mcp=tuple(_remote_mcp(entry, i) for i, entry in remote),
        knowledge=knowledge,
        builtins=_builtins(data.get("builtins"), knowledge is not None, bool(webhooks or local or remote)),
    )
    _unique(config)
    return config


# -- one declaration at a time -------------------------------------------------------------------


class _Entry:
    """One table of an array, read key by key; unknown keys are an error naming the tool."""

    def __init__(self, table: str, index: int, entry: Any) -> None:
        if not isinstance(entry, dict):
            raise ConfigError(f"[[{table}]] #{index + 1}: expected a table")
        self.table, self.entry, self.used = table, entry, set()
        name = entry.get("name")
        if not isinstance(name, str) or not NAME.fullmatch(name):
            raise ConfigError(f"[[{table}]] #{index + 1}: name must be 1-64 letters, digits, _ or - (a letter first)")
        self.name = name
        self.used.add("name")

    def fail(self, message: str) -> ConfigError:
        return ConfigError(f"[[{self.table}]] {self.name}: {message}")

    def get(self, key: str, kind: type | tuple[type, ...], default: Any = None, *, required: bool = False) -> Any:
        self.used.add(key)
        if key not in self.entry:
            if required:
                raise self.fail(f"{key} is missing")
            return default
        value = self.entry[key]
        if not isinstance(value, kind) or (isinstance(value, bool) and bool not in _kinds(kind)):
            raise self.fail(f"{key} has the wrong type")
        return value

    def text(self, key: str, *, required: bool = False, default: str | None = None) -> Any:
        value = self.get(key, str, default, required=required)
        if required and not value.strip():
            raise self.fail(f"{key} must not be empty")
        return value

    def names(self, key: str) -> tuple[str, ...] | None:
        value = self.get(key, list)
        if value is None:
            return None
        if not all(isinstance(v, str) and v for v in value):
            raise self.fail(f"{key} must be a list of names")
        return tuple(value)

    def timeout(self, default: float) -> float:
        value = self.get("timeout", (int, float), default)
        if not 0.1 <= value <= 120:
            raise self.fail("timeout must be 0.1-120 seconds")
        return float(value)

    def url(self, key: str, *, required: bool = True) -> str | None:
        value = self.text(key, required=required)
        if value is None:
            return None
        parts = urlsplit(value)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise self.fail(f"{key} must be an http:// or https:// URL")
        return str(value)

    def secrets(self, key: str = "headers") -> tuple[tuple[str, Secret], ...]:
        """Header values by reference only: a secret written into the file would be read by
        anyone who can read the file, and end up in backups and screenshots."""
        value = self.get(key, dict, {})
        out = []
        for header, ref in value.items():
            if not isinstance(ref, str) or not (m := re.fullmatch(r"env:([A-Za-z_][A-Za-z0-9_]*)", ref)):
                raise self.fail(f'{key}.{header} must be a reference such as "env:TOKEN_NAME", not the value')
            secret = Secret(m[1])
            try:
                secret.value()
            except ConfigError as exc:
                raise self.fail(f"{key}.{header}: {exc}") from None
            out.append((str(header), secret))
        return tuple(out)

    def done(self) -> None:
        unknown = sorted(set(self.entry) - self.used)
        if unknown:
            raise self.fail(f"unknown key {unknown[0]!r}")


def _kinds(kind: type | tuple[type, ...]) -> tuple[type, ...]:
    return kind if isinstance(kind, tuple) else (kind,)


def _array(data: Mapping[str, Any], table: str) -> list[Any]:
    value = data.get(table, [])
    if not isinstance(value, list):
        raise ConfigError(f"{table}: write it as [[{table}]] tables")
    return value


def _webhook(entry: Any, index: int) -> WebhookSpec:
    e = _Entry("tools", index, entry)
    spec = WebhookSpec(
        name=e.name,
        description=e.text("description", required=True),
        parameters=_schema(e, e.get("parameters", dict, {"type": "object", "properties": {}})),
        url=str(e.url("url")),
        headers=e.secrets(),
        timeout=e.timeout(5.0),
    )
    e.done()
    return spec


def _mcp(entry: Any, index: int) -> McpSpec:
    e = _Entry("mcp", index, entry)
    command, url = e.get("command", list), e.url("url", required=False)
    if (command is None) == (url is None):
        raise e.fail('give either command = ["program", "arg", ...] or url = "http://..."')
    if command is not None and not (command and all(isinstance(c, str) and c for c in command)):
        raise e.fail("command must be a non-empty list of strings")
    spec = McpSpec(
        name=e.name,
        command=tuple(command or ()),
        url=url,
        allowed_tools=e.names("allowed_tools"),
        headers=e.secrets(),
        timeout=e.timeout(10.0),
    )
    e.done()
    return spec


def _remote_mcp(entry: Any, index: int) -> RemoteMcpSpec:
    """A server OpenAI reaches itself. OpenAI echoes the session, its tools included, to the page
    (``session.created``), so nothing secret may go in one: no header, no token in the URL."""
    e = _Entry("mcp", index, entry)
    for key in ("headers", "authorization"):
        if key in e.entry:
            raise e.fail(
                f"{key} cannot go with server_url: OpenAI shows the session's tools to the page, so the "
                f'browser would get the credential; declare the server with url = "..." and {key} instead '
                "(this server then calls it and the secret stays here)"
            )
    approval = e.text("require_approval", default="never")
    if approval == "always":
        raise e.fail(
            'require_approval = "always" would hold every call for an approval nobody at a kiosk gives; '
            'use "never" (and allowed_tools to limit what the agent may call)'
        )
    if approval != "never":
        raise e.fail('require_approval must be "never" (the default)')
    server_url = str(e.url("server_url"))
    parts = urlsplit(server_url)
    if parts.username is not None or parts.query or parts.fragment:
        raise e.fail(
            "server_url must carry no user:password@, ?query or #fragment: the page sees this URL; "
            'for a server that needs a credential, declare it with url = "..." and headers'
        )
    spec = RemoteMcpSpec(
        name=e.name,
        server_url=server_url,
        require_approval=approval,
        allowed_tools=e.names("allowed_tools"),
        description=e.text("description"),
    )
    e.done()
    return spec


def _schema(e: _Entry, schema: dict[str, Any]) -> dict[str, Any]:
    """A JSON schema for an object: what OpenAI needs, checked as JSON Schema here."""
    import jsonschema  # only when tools are declared

    if schema.get("type") != "object":
        raise e.fail('parameters must be a JSON schema with type = "object"')
    try:
        jsonschema.Draft202012Validator.check_schema(schema)
    except jsonschema.SchemaError as exc:
        raise e.fail(f"parameters is not a valid JSON schema: {exc.message}") from None
    return schema


def _knowledge(value: Any, base: Path) -> Path | None:
    if value is None:
        return None
    if not isinstance(value, dict) or set(value) - {"path"} or not isinstance(value.get("path"), str):
        raise ConfigError('[knowledge]: expected path = "folder" and nothing else')
    path = (base / Path(value["path"]).expanduser()).resolve()
    if not path.is_dir():
        raise ConfigError(f"[knowledge] path: {path} is not a folder")
    return path


def _builtins(value: Any, has_knowledge: bool, has_tools: bool) -> frozenset[str]:
    """``[builtins]`` switches (``lookup = false``). An agent given tools (a ``[[tools]]``, an
    ``[[mcp]]`` or a ``[knowledge]`` folder) gets all of them (``lookup`` only with the folder);
    without any, each is off until switched on (``show = true``)."""
    on = set(BUILTINS) if has_knowledge or has_tools else set()
    if not has_knowledge:
        on.discard("lookup")
    if value is None:
        return frozenset(on)
    if not isinstance(value, dict):
        raise ConfigError("[builtins]: expected a table such as lookup = false")
    for name, enabled in value.items():
        if name not in BUILTINS:
            raise ConfigError(f"[builtins]: unknown tool {name!r} (there are {', '.join(BUILTINS)})")
        if not isinstance(enabled, bool):
            raise ConfigError(f"[builtins] {name}: expected true or false")
        if name == "lookup" and enabled and not has_knowledge:
            raise ConfigError("[builtins] lookup: needs a [knowledge] folder to search")
        (on.add if enabled else on.discard)(name)
    return frozenset(on)


def _unique(config: ToolsConfig) -> None:
    seen: set[str] = set(config.enabled_builtins)
    names = [s.name for s in config.webhooks] + [s.name for s in config.mcp] + [s.name for s in config.remote_mcp]
    for name in names:
        if name in seen:
            raise ConfigError(f"tools: two tools (or servers) are named {name!r}")
        seen.add(name)
