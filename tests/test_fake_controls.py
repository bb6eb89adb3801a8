"""The fake's own controls (``/_fake/...``): faults set over HTTP are checked strictly, one can
last a given time (the soak's "refuse for 30 s"), and the stats count the calls made and still open."""

from __future__ import annotations

import time
from typing import Any

import aiohttp
import pytest
from aiohttp.test_utils import TestServer

from tests.helpers import OFFER, REAL_KEY, SDP, wait_for
from voicekiosk.fake import FakeOpenAI
from voicekiosk.fake.faults import Fault, fault_from_json

AUTH = {"Authorization": f"Bearer {REAL_KEY}"}


async def post(server: TestServer, path: str, body: Any) -> tuple[int, Any]:
    async with aiohttp.ClientSession() as s, s.post(server.make_url(path), json=body) as r:
        return r.status, await r.json()


async def stats(server: TestServer) -> dict[str, Any]:
    async with aiohttp.ClientSession() as s, s.get(server.make_url("/_fake/stats")) as r:
        return dict(await r.json())


async def mint(server: TestServer) -> int:
    async with (
        aiohttp.ClientSession() as s,
        s.post(server.make_url("/v1/realtime/client_secrets"), json={}, headers=AUTH) as r,
    ):
        return r.status


@pytest.mark.parametrize(
    ("body", "says"),
    [
        ({"faults": [{"endpoint": "calls", "sattus": 503}]}, "Unknown fault field(s): sattus."),
        ({"faults": [{"endpoint": "callz"}]}, "Unknown endpoint"),
        ({"faults": [{"kind": "explode"}]}, "Unknown kind"),
        ({"faults": [{"status": "503"}]}, "Invalid type for 'status'."),
        ({"faults": [{"times": True}]}, "Invalid type for 'times'."),
        ({"faults": [{"seconds": -1}]}, "'seconds' must be positive."),
        ({"faults": ["calls"]}, "Each fault must be a JSON object."),
        ({"faults": {"endpoint": "calls"}}, "'faults' must be a list."),
        ({"latency_ms": "fast"}, "'latency_ms' must be a number"),
        ({"latency": 5}, "Expected a JSON object with 'latency_ms' and/or 'faults'."),
        ([], "Expected a JSON object"),
    ],
)
async def test_bad_faults_are_refused_and_change_nothing(
    fake: FakeOpenAI, fake_server: TestServer, body: Any, says: str
) -> None:
    fake.add_fault("calls", status=500)
    status, answer = await post(fake_server, "/_fake/faults", body)
    assert status == 400
    assert says in answer["error"]["message"]
    assert [f.status for f in fake.faults] == [500] and fake.latency == 0.0


async def test_a_fault_with_seconds_lapses_by_itself(fake: FakeOpenAI, fake_server: TestServer) -> None:
    faults = [{"endpoint": "client_secrets", "status": 503, "seconds": 0.4}]
    status, answer = await post(fake_server, "/_fake/faults", {"faults": faults})
    assert (status, answer["faults"]) == (200, 1)
    set_at = time.monotonic()
    assert await mint(fake_server) == 503
    assert await mint(fake_server) == 503  # not used up: it lasts its time

    async def minted() -> bool:
        return await mint(fake_server) == 200

    await wait_for(minted, timeout=5, interval=0.05, what="a mint answered 200")
    assert time.monotonic() - set_at >= 0.4
    assert fake.faults == []  # dropped once lapsed


def test_fault_from_json_takes_every_field_a_fault_has() -> None:
    fault = fault_from_json(
        {"endpoint": "calls", "kind": "status", "status": 429, "code": "rate_limit_exceeded", "retry_after": 3,
         "times": 2, "size": 10, "seconds": 1.5}
    )  # fmt: skip
    assert fault == Fault("calls", "status", 429, "rate_limit_exceeded", 3, 2, 10, 1.5)
    assert not fault.lapsed and not Fault("calls").lapsed


async def test_stats_count_calls_made_and_open(fake: FakeOpenAI, fake_server: TestServer) -> None:
    assert (await stats(fake_server))["open"] == {"realtime": 0, "live": 0}
    url = fake_server.make_url("/v1/realtime/calls")
    async with aiohttp.ClientSession() as s:
        ids = []
        for _ in range(2):
            form = aiohttp.FormData(default_to_multipart=True)
            form.add_field("sdp", OFFER, content_type="application/sdp")
            form.add_field("session", '{"type":"realtime","model":"gpt-realtime-2.1"}', content_type="application/json")
            async with s.post(url, data=form, headers=AUTH) as r:
                assert r.status == 201
                ids.append(r.headers["Location"].rsplit("/", 1)[-1])
        async with s.post(url, data=OFFER, headers={**SDP, "Authorization": "Bearer nope"}) as r:
            assert r.status == 401  # refused: not made
        got = await stats(fake_server)
        assert got["made"] == {"realtime": 2} and got["open"] == {"realtime": 2, "live": 0}
        async with s.post(fake_server.make_url(f"/v1/realtime/calls/{ids[0]}/hangup"), headers=AUTH) as r:
            assert r.status == 200
    got = await stats(fake_server)
    assert got["made"] == {"realtime": 2} and got["open"] == {"realtime": 1, "live": 0}
