"""Tools declared in the config file: read, typed and checked, with one line naming the tool
when something is wrong (and secrets only ever as references)."""

from __future__ import annotations

from pathlib import Path

import pytest

from voicekiosk.errors import ConfigError
from voicekiosk.settings import load_settings
from voicekiosk.tools.spec import Secret

GOOD = """
[[tools]]
name = "book_tour"
description = "Book a guided tour for a visitor."
url = "https://intranet.example/api/tours"
headers = { Authorization = "env:TOURS_TOKEN" }
timeout = 5
[tools.parameters]
type = "object"
required = ["time"]
properties = { time = { type = "string" }, people = { type = "integer" } }

[[mcp]]
name = "home"
command = ["uvx", "some-mcp-server"]
allowed_tools = ["light_on", "light_off"]

[[mcp]]
name = "docs"
server_url = "https://mcp.example.com/sse"
require_approval = "never"

[knowledge]
path = "desk-knowledge"
"""


def load(tmp_path: Path, text: str, **env: str):
    (tmp_path / "desk-knowledge").mkdir(exist_ok=True)
    config = tmp_path / "vk.toml"
    config.write_text(text)
    return load_settings({}, env=env, config_path=config)


def test_the_issue_s_example_is_read_as_typed_declarations(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("TOURS_TOKEN", "Bearer tours-secret-123")
    settings = load(tmp_path, GOOD)
    tools = settings.tools
    [hook] = tools.webhooks
    assert (hook.name, hook.url, hook.timeout) == ("book_tour", "https://intranet.example/api/tours", 5.0)
    assert hook.parameters["required"] == ["time"] and hook.headers == (("Authorization", Secret("TOURS_TOKEN")),)
    [home] = tools.mcp
    assert (home.command, home.allowed_tools, home.url) == (("uvx", "some-mcp-server"), ("light_on", "light_off"), None)
    [docs] = tools.remote_mcp
    assert (docs.server_url, docs.require_approval) == ("https://mcp.example.com/sse", "never")
    assert tools.knowledge == (tmp_path / "desk-knowledge").resolve()
    assert tools.enabled_builtins == ("lookup", "show", "end_conversation")
    assert settings.sources["tools"] == f"file {tmp_path / 'vk.toml'}"
    assert "tours-secret" not in repr(settings)


def test_no_tables_no_tools(tmp_path: Path):
    tools = load(tmp_path, 'voice = "cedar"\n').tools
    assert not tools.webhooks and not tools.mcp and tools.knowledge is None
    assert tools.enabled_builtins == ()


HOOK = '[[tools]]\nname = "t"\ndescription = "d"\nurl = "https://x.example/"\n'


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            HOOK + 'headers = { Authorization = "Bearer abc" }\n',
            'headers.Authorization must be a reference such as "env:',
        ),
        (
            HOOK + 'headers = { Authorization = "env:NOPE_NOT_SET" }\n',
            "[[tools]] t: headers.Authorization: $NOPE_NOT_SET is not set",
        ),
        (
            HOOK + 'parameters = { type = "string" }\n',
            '[[tools]] t: parameters must be a JSON schema with type = "object"',
        ),
        (
            HOOK + 'parameters = { type = "object", properties = 3 }\n',
            "[[tools]] t: parameters is not a valid JSON schema",
        ),
        (HOOK + "colour = 1\n", "[[tools]] t: unknown key 'colour'"),
        (HOOK + "timeout = 0\n", "[[tools]] t: timeout must be 0.1-120 seconds"),
        (HOOK.replace("https://x.example/", "ftp://x"), "[[tools]] t: url must be an http:// or https:// URL"),
        (HOOK.replace('name = "t"', 'name = "has space"'), "[[tools]] #1: name must be"),
        (HOOK + HOOK, "tools: two tools (or servers) are named 't'"),
        ('[[mcp]]\nname = "m"\n', '[[mcp]] m: give either command = ["program", "arg", ...] or url'),
        (
            '[[mcp]]\nname = "m"\nserver_url = "https://a.example"\nrequire_approval = "maybe"\n',
            'require_approval must be "never"',
        ),
        ('[knowledge]\npath = "nowhere"\n', "[knowledge] path:"),
        ("[builtins]\nlookup = true\n", "[builtins] lookup: needs a [knowledge] folder"),
        ("[builtins]\nteleport = true\n", "[builtins]: unknown tool 'teleport'"),
        ('tools = "webhook"\n', "tools: write it as [[tools]] tables"),
    ],
)
def test_bad_declarations_stop_start_up_with_one_line_naming_the_tool(tmp_path: Path, text: str, message: str):
    with pytest.raises(ConfigError) as caught:
        load(tmp_path, text)
    assert message in str(caught.value) and "\n" not in str(caught.value)


def test_built_ins_can_be_switched_off(tmp_path: Path):
    text = '[knowledge]\npath = "desk-knowledge"\n[builtins]\nlookup = false\nshow = false\nend_conversation = false\n'
    tools = load(tmp_path, text).tools
    assert tools.enabled_builtins == () and tools.knowledge is not None and not tools.runs_here


@pytest.mark.parametrize(
    ("text", "builtins"),
    [
        ("", ()),  # no tools: none of them (no sideband for nothing)
        (HOOK, ("show", "end_conversation")),  # an agent given tools gets the page's too
        ('[knowledge]\npath = "desk-knowledge"\n', ("lookup", "show", "end_conversation")),
        ("[builtins]\nend_conversation = true\n", ("end_conversation",)),  # alone, switched on
        (HOOK + "[builtins]\nshow = false\n", ("end_conversation",)),
    ],
)
def test_built_ins_default_on_with_tools_and_switch_one_by_one(tmp_path: Path, text: str, builtins: tuple):
    tools = load(tmp_path, text).tools
    assert tools.enabled_builtins == builtins and tools.runs_here == bool(builtins)
