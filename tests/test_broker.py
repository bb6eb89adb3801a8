"""The key broker against a fake OpenAI on loopback: GA shapes, both SDP modes, every fault."""

from __future__ import annotations

import asyncio
import json
import logging

import pytest

from tests.helpers import OFFER, REAL_KEY, call_id, free_port, post_call
from voicekiosk.fake.answerers import CannedAnswerer
from voicekiosk.web.appkeys import SETTINGS


async def test_mint_sends_ga_request_and_answers_the_page(make_client, fake):
    client = await make_client(sdp="browser", model="gpt-realtime-2.1", voice="cedar", token_ttl=90)
    response = await client.post("/api/token")
    assert response.status == 200
    body = await response.json()
    assert set(body) == {"value", "expires_at", "model", "calls_url", "claim"}
    assert body["value"].startswith("ek_")
    assert body["calls_url"] == client.server.app[SETTINGS].calls_url
    assert body["calls_url"].endswith("/v1/realtime/calls")

    [sent] = fake.recorded("client_secrets")
    assert sent.path == "/v1/realtime/client_secrets"
    assert "openai-beta" not in sent.headers
    assert sent.body["expires_after"] == {"anchor": "created_at", "seconds": 90}
    session = sent.body["session"]
    assert session["type"] == "realtime"
    assert session["model"] == "gpt-realtime-2.1"
    assert session["audio"]["output"]["voice"] == "cedar"
    assert session["audio"]["input"]["transcription"]["model"]
    assert session["audio"]["input"]["turn_detection"]["type"] == "server_vad"
    assert session["audio"]["input"]["turn_detection"]["interrupt_response"] is True


async def test_server_mode_exchanges_sdp_as_multipart_and_hangs_up(client, fake):
    response = await post_call(client)
    assert response.status == 201
    assert response.content_type == "application/sdp"
    assert (await response.text()) == CannedAnswerer.SDP
    location, call = response.headers["Location"], call_id(response)
    assert location == f"/api/call/{call}" and call.startswith("rtc_")

    [sent] = fake.recorded("calls")
    assert sent.headers["content-type"].startswith("multipart/form-data")
    assert sent.body["sdp"] == OFFER
    session = json.loads(sent.body["session"])
    assert session["type"] == "realtime" and session["model"] == "gpt-realtime-2.1"

    ended = await client.delete(location)
    assert ended.status == 200
    assert [r.body for r in fake.recorded("hangup")] == [call]
    again = await client.delete(location)
    assert again.status == 404
    assert (await again.json())["error"]["code"] == "unknown_call"


async def test_browser_mode_key_works_at_the_calls_url(make_client, fake, fake_server):
    client = await make_client(sdp="browser")
    config = await (await client.get("/api/config")).json()
    assert config["sdp"] == "browser"
    key = await (await client.post("/api/token")).json()
    assert config["calls_url"] == key["calls_url"]
    # What the page does next: post its offer straight to OpenAI with the ephemeral key.
    upstream = await client.session.post(
        key["calls_url"],
        data=OFFER,
        headers={"Authorization": f"Bearer {key['value']}", "Content-Type": "application/sdp"},
    )
    assert upstream.status == 201
    assert upstream.headers["Location"].startswith("/v1/realtime/calls/rtc_")


async def test_server_mode_hands_out_no_keys(client, fake):
    response = await client.post("/api/token")
    assert response.status == 403
    assert (await response.json())["error"]["code"] == "sdp_mode_server"
    assert fake.recorded("client_secrets") == []
    config = await (await client.get("/api/config")).json()
    assert config["sdp"] == "server" and config["calls_url"] is None


FAULTS = [
    (dict(status=401, code="invalid_api_key"), 502, "upstream_auth"),
    (dict(status=403, code="forbidden"), 502, "upstream_forbidden"),
    (dict(status=429, code="rate_limit_exceeded", retry_after=7), 429, "upstream_rate_limited"),
    (dict(status=429, code="insufficient_quota"), 429, "upstream_rate_limited"),
    (dict(status=500, code="server_error"), 502, "upstream_error"),
    (dict(status=503, code="overloaded"), 502, "upstream_error"),
    (dict(status=400, code="invalid_model"), 502, "upstream_rejected"),
    (dict(kind="timeout"), 504, "upstream_timeout"),
    (dict(kind="malformed"), 502, "upstream_malformed"),
    (dict(kind="close"), 503, "upstream_unreachable"),
]


@pytest.mark.parametrize("endpoint", ["client_secrets", "calls"])
@pytest.mark.parametrize(("fault", "status", "code"), FAULTS, ids=[f"{f[2]}-{f[1]}" for f in FAULTS])
async def test_upstream_faults_map_to_our_errors_and_the_server_recovers(
    make_client, fake, endpoint, fault, status, code
):
    client = await make_client(sdp="browser", upstream_timeout=1.0)

    async def attempt():
        if endpoint == "client_secrets":
            return await client.post("/api/token")
        return await post_call(client)

    fake.add_fault(endpoint, times=1, **fault)
    response = await attempt()
    assert response.status == status
    body = await response.json()
    assert body["error"]["code"] == code
    message = body["error"]["message"]
    assert message and "Injected" not in message and "sk-" not in message and "****" not in message
    if fault.get("retry_after"):
        assert response.headers["Retry-After"] == "7"
    # The fault has cleared: the very next request works.
    assert (await attempt()).status == (200 if endpoint == "client_secrets" else 201)


async def test_unreachable_upstream_is_503_and_serving_goes_on(make_client):
    client = await make_client(openai_base_url=f"http://127.0.0.1:{free_port()}/v1", sdp="browser")
    response = await client.post("/api/token")
    assert response.status == 503
    assert (await response.json())["error"]["code"] == "upstream_unreachable"
    assert (await client.get("/healthz")).status == 200


async def test_hundred_mints_reuse_at_most_two_upstream_connections(make_client, fake):
    client = await make_client(sdp="browser", rate=1000)
    for _ in range(100):
        assert (await client.post("/api/token")).status == 200
    assert len(fake.recorded("client_secrets")) == 100
    assert 1 <= fake.connections <= 2


async def test_concurrent_calls_are_all_answered(make_client, fake):
    client = await make_client(rate=1000, max_calls=100)
    responses = await asyncio.gather(*(post_call(client) for _ in range(40)))
    assert [r.status for r in responses] == [201] * 40
    assert len({r.headers["Location"] for r in responses}) == 40


async def test_the_real_key_appears_in_no_response_header_or_log(make_client, fake, caplog, capsys):
    caplog.set_level(logging.DEBUG)
    client = await make_client(sdp="browser")
    seen: list[str] = []

    async def record(response):
        seen.append(await response.text())
        seen.extend(f"{k}: {v}" for k, v in response.headers.items())

    for path in ("/", "/api/config", "/healthz", "/static/main.js"):
        await record(await client.get(path))
    await record(await client.post("/api/token"))
    fake.add_fault("client_secrets", status=401, code="invalid_api_key", times=1)
    await record(await client.post("/api/token"))
    await record(await post_call(client))
    captured = capsys.readouterr()
    everything = "\n".join([*seen, caplog.text, captured.out, captured.err])
    assert "sk-proj-REALKEY" not in everything
    assert REAL_KEY[-12:] not in everything
    assert "upstream_auth" in caplog.text or "invalid_api_key" in caplog.text  # the failure was logged


async def test_missing_key_is_reported_not_fatal(make_client, fake):
    client = await make_client(api_key=None)
    health = await (await client.get("/healthz")).json()
    assert health["openai"] == "no_api_key"
    response = await post_call(client)
    assert response.status == 503
    body = await response.json()
    assert body["error"]["code"] == "no_api_key" and "OPENAI_API_KEY" in body["error"]["message"]
    assert (await client.get("/")).status == 200
    assert fake.requests == []


async def test_shutdown_hangs_up_open_calls(make_client, fake):
    client = await make_client()
    call = call_id(await post_call(client))
    await client.close()
    assert [r.body for r in fake.recorded("hangup")] == [call]
