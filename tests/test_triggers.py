"""Triggers from outside (``web/triggers.py``): ``/api/announce``, ``/api/start``, ``/api/stop`` reach
every connected page's socket, from loopback or with the access token, and bad bodies get clear
JSON errors. Real app, real sockets over loopback."""

from __future__ import annotations

import json
import logging
from typing import Any

import pytest

from tests.helpers import wait_for, within
from voicekiosk.web.access import COOKIE, load_token
from voicekiosk.web.appkeys import EVENTS
from voicekiosk.web.triggers import MAX_ANNOUNCEMENT

pytestmark = pytest.mark.usefixtures("no_leftover_tasks")
RELAYED = {"X-Forwarded-For": "192.0.2.7"}  # relayed by a proxy here: from the LAN, not this machine


async def pages(client: Any, count: int) -> list[Any]:
    """``count`` page sockets, connected (none holds a call)."""
    sockets = [await client.ws_connect("/api/events") for _ in range(count)]
    await wait_for(lambda: client.server.app[EVENTS].pages == count, timeout=5, what="the pages")
    return sockets


async def heard(ws: Any) -> dict[str, Any]:
    return dict(json.loads(await within(ws.receive_str(), 5, "a trigger")))


async def error_code(response: Any) -> str:
    return str((await response.json())["error"]["code"])


async def test_each_trigger_reaches_every_page(client: Any, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="voicekiosk")
    sockets = await pages(client, 2)
    response = await client.post("/api/announce", json={"text": "  The museum closes in 15 minutes. "})
    assert response.status == 202 and await response.json() == {"status": "sent", "pages": 2}
    for ws in sockets:
        assert await heard(ws) == {"type": "announce", "text": "The museum closes in 15 minutes."}
    for kind in ("start", "stop"):
        response = await client.post(f"/api/{kind}")  # no body needed
        assert response.status == 202 and (await response.json())["pages"] == 2
        assert [await heard(ws) for ws in sockets] == [{"type": kind}] * 2
    assert "announce sent to 2 page(s)" in caplog.text
    assert "museum closes" not in caplog.text  # the operator's text is never logged
    for ws in sockets:
        await ws.close()


async def test_with_no_page_connected_the_answer_says_so(client: Any) -> None:
    for path, body in (("/api/announce", {"text": "Hello"}), ("/api/start", None), ("/api/stop", {})):
        response = await client.post(path, json=body)
        assert response.status == 409 and await error_code(response) == "no_page"
    ws = (await pages(client, 1))[0]
    await ws.close()
    await wait_for(lambda: client.server.app[EVENTS].pages == 0, timeout=5, what="the page gone")
    assert (await client.post("/api/start")).status == 409


@pytest.mark.parametrize(
    ("body", "status", "code"),
    [
        (b"not json", 400, "not_json"),
        (b"[1, 2]", 400, "not_json"),
        (b"{}", 400, "no_text"),
        (b'{"text": "   "}', 400, "no_text"),
        (b'{"text": 42}', 400, "no_text"),
        (json.dumps({"text": "x" * (MAX_ANNOUNCEMENT + 1)}).encode(), 413, "text_too_long"),
        (json.dumps({"text": "Ring\x1b[2J bell"}).encode(), 400, "bad_text"),
        (json.dumps({"text": "one\nline"}).encode(), 400, "bad_text"),
        (json.dumps({"text": "y" * 5000}).encode(), 413, "too_large"),
    ],
)
async def test_bad_announcements_are_refused_clearly(client: Any, body: bytes, status: int, code: str) -> None:
    ws = (await pages(client, 1))[0]
    response = await client.post("/api/announce", data=body, headers={"Content-Type": "application/json"})
    assert response.status == status and await error_code(response) == code
    assert (await client.post("/api/start", data=b"{nope")).status == 400  # a body, if any, is JSON
    await ws.close()


async def test_off_loopback_a_trigger_needs_the_access_token(client: Any, settings: Any) -> None:
    ws = (await pages(client, 1))[0]
    token = load_token(settings.data_dir)
    for path in ("/api/announce", "/api/start", "/api/stop"):
        refused = await client.post(path, json={"text": "Hi"}, headers=RELAYED)
        assert refused.status == 401 and await error_code(refused) == "unauthorized"
        wrong = await client.post(path, json={"text": "Hi"}, headers={**RELAYED, "Authorization": "Bearer nope"})
        assert wrong.status == 401
    bearer = {**RELAYED, "Authorization": f"Bearer {token}"}
    assert (await client.post("/api/announce", json={"text": "Hi"}, headers=bearer)).status == 202
    cookie = {**RELAYED, "Cookie": f"{COOKIE}={token}"}
    assert (await client.post("/api/stop", headers=cookie)).status == 202
    assert [await heard(ws) for _ in range(2)] == [{"type": "announce", "text": "Hi"}, {"type": "stop"}]
    await ws.close()


async def test_with_open_access_triggers_come_from_this_machine_only(make_client: Any) -> None:
    """--open lets any device talk to the agent, not make a public kiosk say what it is told."""
    client = await make_client(open=True)
    ws = (await pages(client, 1))[0]
    refused = await client.post("/api/announce", json={"text": "Hi"}, headers=RELAYED)
    assert refused.status == 403 and await error_code(refused) == "local_only"
    assert (await client.post("/api/announce", json={"text": "Hi"})).status == 202  # from loopback
    assert await heard(ws) == {"type": "announce", "text": "Hi"}
    await ws.close()


async def test_triggers_are_rate_limited_per_device(make_client: Any) -> None:
    client = await make_client(rate=2)
    ws = (await pages(client, 1))[0]
    assert [(await client.post("/api/start")).status for _ in range(2)] == [202, 202]
    refused = await client.post("/api/start")
    assert refused.status == 429 and refused.headers["Retry-After"]
    await ws.close()
