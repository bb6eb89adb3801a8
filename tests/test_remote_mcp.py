"""Remote MCP servers (``[[mcp]]`` with ``server_url``), which OpenAI calls itself: declared to the
Realtime session as ``mcp`` tools in either SDP mode, never with a credential (OpenAI shows the
session's tools to the page), refused with GPT-Live, checked strictly by the fake, and listed by
``voicekiosk tools`` as far as this machine can tell."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from tests.desk import PARAMETERS, Desk, serve_desk
from tests.helpers import wait_for
from tests.rtc_client import Client, join_through
from voicekiosk.errors import ConfigError
from voicekiosk.fake import FakeOpenAI
from voicekiosk.fake.agent import AgentAnswerer
from voicekiosk.fake.call import AgentCall
from voicekiosk.fake.checks import check_session
from voicekiosk.notices import startup_notes
from voicekiosk.settings import Settings, load_settings
from voicekiosk.tools.inventory import inventory
from voicekiosk.tools.mcp_remote import remote_mcp_declarations
from voicekiosk.tools.spec import RemoteMcpSpec, Secret, ToolsConfig, WebhookSpec
from voicekiosk.web.appkeys import CONTROL

DOCS = RemoteMcpSpec(
    name="docs",
    server_url="https://mcp.example.com/sse",
    allowed_tools=("search_docs",),
    description="The museum's collection database.",
)
DECLARED = {
    "type": "mcp",
    "server_label": "docs",
    "server_url": "https://mcp.example.com/sse",
    "require_approval": "never",
    "allowed_tools": ["search_docs"],
    "server_description": "The museum's collection database.",
}
SECRET = "desk-secret-5d2a"


def load(tmp_path: Path, text: str, **env: str) -> Settings:
    config = tmp_path / "vk.toml"
    config.write_text(text)
    return load_settings({}, env=env, config_path=config)


REMOTE = '[[mcp]]\nname = "docs"\nserver_url = "https://mcp.example.com/sse"\n'


# -- the config --------------------------------------------------------------------------------


def test_a_remote_server_is_read_with_its_description_and_declared_exactly(tmp_path: Path) -> None:
    text = REMOTE + 'allowed_tools = ["search_docs"]\ndescription = "The museum\'s collection database."\n'
    settings = load(tmp_path, text)
    [docs] = settings.tools.remote_mcp
    assert docs == DOCS
    warned = "Remote MCP server docs: OpenAI shows its URL to the page, so it must hold no secret."
    assert warned in startup_notes(settings, [])  # the operator is told what the page sees
    assert remote_mcp_declarations([docs, RemoteMcpSpec("bare", "https://b.example/mcp")]) == [
        DECLARED,
        {"type": "mcp", "server_label": "bare", "server_url": "https://b.example/mcp", "require_approval": "never"},
    ]


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (
            'headers = { Authorization = "env:DOCS_TOKEN" }\n',
            "[[mcp]] docs: headers cannot go with server_url: OpenAI shows the session's tools to the page, so "
            'the browser would get the credential; declare the server with url = "..." and headers instead '
            "(this server then calls it and the secret stays here)",
        ),
        ('authorization = "env:DOCS_TOKEN"\n', "[[mcp]] docs: authorization cannot go with server_url: "),
        ('require_approval = "always"\n', '[[mcp]] docs: require_approval = "always" would hold every call'),
        ('require_approval = "maybe"\n', '[[mcp]] docs: require_approval must be "never"'),
        ("colour = 1\n", "[[mcp]] docs: unknown key 'colour'"),
    ],
)
def test_a_credential_or_an_approval_nobody_gives_is_refused_in_one_line(
    tmp_path: Path, extra: str, message: str
) -> None:
    with pytest.raises(ConfigError) as caught:
        load(tmp_path, REMOTE + extra, DOCS_TOKEN="Bearer docs-secret-1")
    assert str(caught.value).startswith(message) and "\n" not in str(caught.value)
    assert "docs-secret" not in str(caught.value)


@pytest.mark.parametrize(
    "url",
    [
        "https://user:pw@mcp.example.com/sse",
        "https://mcp.example.com/sse?key=abc123",
        "https://mcp.example.com/sse#abc123",
    ],
)
def test_a_credential_in_the_url_is_refused_too(tmp_path: Path, url: str) -> None:
    with pytest.raises(ConfigError) as caught:
        load(tmp_path, f'[[mcp]]\nname = "docs"\nserver_url = "{url}"\n')
    message = str(caught.value)
    assert message.startswith("[[mcp]] docs: server_url must carry no user:password@, ?query or #fragment")
    assert "\n" not in message and "abc123" not in message and "user:pw" not in message


def test_gpt_live_refuses_a_remote_server_and_says_what_to_do(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as caught:
        load(tmp_path, 'engine = "live"\n' + REMOTE)
    assert str(caught.value) == (
        "[[mcp]] docs: server_url needs the realtime engine (GPT-Live has no mcp tool for OpenAI to reach a "
        'server itself); declare it with url = "..." so this server calls it'
    )
    assert load(tmp_path, REMOTE).engine == "realtime"


# -- the fake's strict session -------------------------------------------------------------------


def test_the_fake_takes_exactly_the_documented_mcp_tool_fields() -> None:
    base = {"type": "realtime", "model": "gpt-realtime"}
    full = DECLARED | {"authorization": "tok", "headers": {"X-Key": "k"}}
    filtered = {"type": "mcp", "server_label": "c", "connector_id": "connector_gmail"}
    filtered |= {"allowed_tools": {"tool_names": ["a"], "read_only": True}}
    filtered |= {"require_approval": {"never": {"tool_names": ["a"]}, "always": {"read_only": False}}}
    choice = {"type": "mcp", "server_label": "docs", "name": "search_docs"}
    assert check_session(base | {"tools": [full, filtered], "tool_choice": choice}) is None
    refused = {
        "session.tools[0].url": DECLARED | {"url": "https://x"},
        "session.tools[0].server_label": {k: v for k, v in DECLARED.items() if k != "server_label"},
        "session.tools[0].server_url": DECLARED | {"connector_id": "connector_gmail"},
        "session.tools[0].require_approval": DECLARED | {"require_approval": "sometimes"},
        "session.tools[0].headers.X-Key": DECLARED | {"headers": {"X-Key": 1}},
        "session.tools[0].allowed_tools.names": DECLARED | {"allowed_tools": {"names": ["a"]}},
    }
    for param, tool in refused.items():
        assert check_session(base | {"tools": [tool]}) == param, param
    no_source = {k: v for k, v in DECLARED.items() if k != "server_url"}
    assert check_session(base | {"tools": [no_source]}) == "session.tools[0].server_url"


async def test_the_fake_refuses_an_unknown_mcp_field_in_openai_s_words(fake: FakeOpenAI, fake_server: TestServer):
    import aiohttp

    session = {"type": "realtime", "model": "gpt-realtime", "tools": [DECLARED | {"token": "x"}]}
    async with aiohttp.ClientSession() as http:
        url = fake_server.make_url("/v1/realtime/client_secrets")
        headers = {"Authorization": f"Bearer {fake.api_key}"}
        async with http.post(url, json={"session": session}, headers=headers) as response:
            assert response.status == 400
            error = (await response.json())["error"]
    assert error == {
        "message": "Unknown parameter: 'session.tools[0].token'.",
        "type": "invalid_request_error",
        "param": "session.tools[0].token",
        "code": "unknown_parameter",
    }


# -- in the session, end to end ------------------------------------------------------------------


@pytest.fixture
async def page() -> AsyncIterator[Client]:
    peer = Client()
    yield peer
    await peer.close()


@pytest.mark.slow
@pytest.mark.usefixtures("no_leftover_tasks")
async def test_the_session_carries_the_mcp_tool_and_the_page_sees_no_credential(
    make_client: Any, fake: FakeOpenAI, page: Client, aiohttp_server: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Beside a webhook with a secret header (the way to call a server that needs one): the fake
    gets both tools exactly, the page's ``session.created`` shows the remote server, and nothing
    the page receives carries the webhook's secret, header or URL."""
    fake.answerer = AgentAnswerer()
    desk: tuple[Desk, TestServer] = await serve_desk(aiohttp_server, "X-Desk-Token")
    monkeypatch.setenv("DESK_TOKEN", SECRET)
    hook = WebhookSpec(
        name="book_tour",
        description="Book a tour.",
        parameters=PARAMETERS,
        url=str(desk[1].make_url("/api/tours")),
        headers=(("X-Desk-Token", Secret("DESK_TOKEN")),),
    )
    client = await make_client(tools=ToolsConfig(webhooks=(hook,), remote_mcp=(DOCS,)))
    call: AgentCall = fake.answerer.calls[await join_through(client, page, "session.created")]  # type: ignore[attr-defined]
    await wait_for(lambda: call.sidebands == 1, timeout=5, what="the sideband")  # the webhook still runs here

    [created] = fake.recorded("calls")
    sent = json.loads(created.body["session"])["tools"]
    assert [t["type"] for t in sent] == ["function", "mcp"] and sent[1] == DECLARED
    shown = page.of("session.created")[0]["session"]["tools"]
    assert shown == sent  # OpenAI echoes the tools to the page: the remote server is seen as declared
    page.send({"type": "session.update", "session": {"instructions": "Be brief."}})
    updated = await page.wait_for("session.updated")
    assert updated["session"]["tools"] == sent
    page.send({"type": "session.update", "session": {"tools": [DECLARED | {"token": "x"}]}})
    refused = (await page.wait_for("error"))["error"]
    assert (refused["code"], refused["param"]) == ("unknown_parameter", "session.tools[0].token")
    assert call.session["tools"] == sent  # a refused update changes nothing
    seen = json.dumps([event for _, event in page.events])
    for secret in (SECRET, "X-Desk-Token", "DESK_TOKEN", str(desk[1].make_url("/")), "/api/tours"):
        assert secret not in seen
    assert "authorization" not in seen.lower() and '"headers"' not in seen


async def test_browser_sdp_puts_the_remote_server_in_the_key_s_session(
    make_client: Any, fake: FakeOpenAI, settings: Settings
) -> None:
    """No sideband is needed (OpenAI calls the server), so ``--sdp browser`` declares it in the mint:
    the call made with that key has it."""
    client = await make_client(tools=ToolsConfig(remote_mcp=(DOCS,)), sdp="browser")
    assert client.server.app[CONTROL] is None
    response = await client.post("/api/token")
    assert response.status == 200
    key = (await response.json())["value"]
    [minted] = fake.recorded("client_secrets")
    assert minted.body["session"]["tools"] == [DECLARED] and minted.body["session"]["tool_choice"] == "auto"
    assert fake.keys[key][1]["tools"] == [DECLARED]  # what a call made with the key gets (the fake's record)


# -- voicekiosk tools ----------------------------------------------------------------------------


async def test_tools_lists_a_remote_server_as_far_as_this_machine_can_tell(
    aiohttp_server: Any, settings: Settings
) -> None:
    asked: list[tuple[str, str | None]] = []

    async def any_method(request: web.Request) -> web.Response:
        asked.append((request.method, request.headers.get("Authorization")))
        return web.Response(status=405)

    app = web.Application()
    app.router.add_route("*", "/mcp", any_method)
    server = await aiohttp_server(app, host="127.0.0.1")
    local = RemoteMcpSpec("intranet", str(server.make_url("/mcp")))
    rows = await inventory(Settings(data_dir=settings.data_dir, tools=ToolsConfig(remote_mcp=(local,))))
    [row] = rows
    assert (row.name, row.source) == ("intranet", "remote mcp (OpenAI calls it)")
    assert row.status == (
        "reachable (HTTP 405 to OPTIONS) from here; 127.0.0.1 is not on the internet, so OpenAI cannot reach it: "
        "declare it with url = instead"
    )
    assert asked == [("OPTIONS", None)]  # checked without a credential (it has none)
