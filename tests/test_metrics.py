"""``/metrics`` over real HTTP on loopback, parsed as Prometheus parses it: counts go up as calls
start and end, upstream requests are timed and their failures counted, tools' outcomes counted."""

from __future__ import annotations

import json
import ssl
from typing import Any

import httpx
from prometheus_client.parser import text_string_to_metric_families

from tests.helpers import call_id, post_call, wait_for
from voicekiosk import __version__
from voicekiosk.tls.context import prepare
from voicekiosk.tools.runner import ToolRunner
from voicekiosk.watch.metrics import UNKNOWN_TOOL, Metrics
from voicekiosk.web.appkeys import CALLS, EVENTS, METRICS

Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


async def scrape(client: Any) -> Samples:
    response = await client.get("/metrics")
    assert response.status == 200
    assert response.content_type == "text/plain"
    samples: Samples = {}
    for family in text_string_to_metric_families(await response.text()):
        for sample in family.samples:
            samples[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return samples


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


async def test_a_call_counts_as_started_active_then_ended_with_its_reason(make_client):
    client = await make_client()
    before = await scrape(client)
    assert value(before, "voicekiosk_calls_started_total") == 0
    assert value(before, "voicekiosk_calls_ended_total", reason="admin") == 0  # every reason is there from 0
    assert ("voicekiosk_calls_ended_total", (("reason", "page"),)) in before

    created = await post_call(client)
    assert created.status == 201
    during = await scrape(client)
    assert value(during, "voicekiosk_calls_started_total") == 1
    assert value(during, "voicekiosk_calls_active") == 1
    assert value(during, "voicekiosk_upstream_request_duration_seconds_count", endpoint="call") == 1
    assert value(during, "voicekiosk_upstream_request_duration_seconds_sum", endpoint="call") > 0

    assert (await client.delete(created.headers["Location"])).status == 200
    after = await scrape(client)
    assert value(after, "voicekiosk_calls_active") == 0
    assert value(after, "voicekiosk_calls_ended_total", reason="page") == 1
    assert value(after, "voicekiosk_call_duration_seconds_count") == 1
    assert value(after, "voicekiosk_upstream_request_duration_seconds_count", endpoint="hang-up") == 1
    assert value(after, "voicekiosk_calls_cost_unknown_total") == 0  # the default model has a price
    assert value(after, "voicekiosk_estimated_cost_usd_total") == 0  # and it said nothing


async def test_a_call_of_a_model_without_a_price_counts_as_unknown_never_a_guess(make_client):
    client = await make_client(model="my-azure-deployment")
    created = await post_call(client)
    assert (await client.delete(created.headers["Location"])).status == 200
    after = await scrape(client)
    assert value(after, "voicekiosk_calls_cost_unknown_total") == 1
    assert value(after, "voicekiosk_estimated_cost_usd_total") == 0


async def test_tokens_a_page_reports_are_counted_as_the_pages(make_client):
    client = await make_client()
    created = await post_call(client)
    call = call_id(created)
    async with client.ws_connect("/api/events") as ws:
        await ws.send_str(json.dumps({"type": "call", "call_id": call}))
        await wait_for(lambda: client.app[CALLS].get(call).owners == 1, what="the claim")
        assert value(await scrape(client), "voicekiosk_pages_connected") == 1
        usage = {"input_tokens": 120, "output_tokens": 30}  # not split by kind: "other"
        await ws.send_str(json.dumps({"type": "usage", "call_id": call, "usage": usage, "response_id": "resp_1"}))
        await wait_for(lambda: client.app[CALLS].get(call).input_tokens == 120, what="the usage")
        assert (await client.delete(created.headers["Location"])).status == 200
    await wait_for(lambda: client.app[EVENTS].pages == 0, what="the socket closed on the server's side")
    samples = await scrape(client)
    assert value(samples, "voicekiosk_pages_connected") == 0
    voice = {"model": "voice", "kind": "other"}
    assert value(samples, "voicekiosk_tokens_total", **voice, direction="input", source="page") == 120
    assert value(samples, "voicekiosk_tokens_total", **voice, direction="output", source="page") == 30
    assert value(samples, "voicekiosk_tokens_total", **voice, direction="input", source="server") == 0


async def test_upstream_failures_are_counted_by_endpoint_and_code(make_client, fake):
    client = await make_client()
    fake.add_fault("calls", status=429, code="rate_limit_exceeded", times=1)
    assert (await post_call(client)).status == 429
    fake.add_fault("calls", status=500, times=2)
    for _ in range(2):
        assert (await post_call(client)).status == 502
    samples = await scrape(client)
    assert value(samples, "voicekiosk_upstream_errors_total", endpoint="call", code="upstream_rate_limited") == 1
    assert value(samples, "voicekiosk_upstream_errors_total", endpoint="call", code="upstream_error") == 2
    assert value(samples, "voicekiosk_upstream_request_duration_seconds_count", endpoint="call") == 3
    assert value(samples, "voicekiosk_calls_started_total") == 0


async def test_a_mint_is_timed_as_its_own_endpoint(make_client):
    client = await make_client(sdp="browser")
    assert (await client.post("/api/token")).status == 200
    samples = await scrape(client)
    assert value(samples, "voicekiosk_upstream_request_duration_seconds_count", endpoint="mint") == 1


async def test_build_info_and_the_process_figures(make_client, settings):
    samples = await scrape(await make_client())
    info = {"version": __version__, "engine": "realtime", "model": settings.model}
    assert value(samples, "voicekiosk_build_info", **info) == 1
    assert value(samples, "process_resident_memory_bytes") > 0
    assert value(samples, "process_open_fds") > 0


async def test_certificate_days_left_for_the_ca_and_the_server_certificate(serve_app, https_settings):
    ca = prepare(https_settings.settings).ca
    server = await serve_app(https=True, ca=ca)
    verify = ssl.create_default_context(cafile=str(https_settings.settings.data_dir / "ca.pem"))
    async with httpx.AsyncClient(verify=verify) as client:
        text = (await client.get(str(server.make_url("/metrics")))).text
    days = {
        sample.labels["certificate"]: sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if sample.name == "voicekiosk_certificate_days_left"
    }
    assert set(days) == {"ca", "server"}
    assert days["ca"] > 365 and 1 < days["server"] <= days["ca"]


async def test_two_apps_in_one_process_keep_their_own_counts(make_client):
    first, second = await make_client(), await make_client()
    assert (await post_call(first)).status == 201
    assert value(await scrape(first), "voicekiosk_calls_started_total") == 1
    assert value(await scrape(second), "voicekiosk_calls_started_total") == 0
    assert first.app[METRICS].registry is not second.app[METRICS].registry


class Echo:
    """A tool that says back what it was given, or fails when asked to."""

    name = "echo"
    description = "Says it back."
    parameters = {"type": "object", "properties": {"text": {"type": "string"}}, "required": ["text"]}  # noqa: RUF012
    source = "test"
    timeout = 2.0

    async def run(self, arguments: dict[str, Any]) -> str:
        return str(arguments["text"])


async def test_tool_calls_are_counted_by_outcome(settings):
    metrics = Metrics(settings, expiry=dict, cost=lambda record: None)
    runner = ToolRunner([Echo()])
    runner.observe(metrics)
    assert (await runner.call("echo", '{"text": "hi"}')).ok
    assert not (await runner.call("echo", "{}")).ok  # invalid arguments
    assert not (await runner.call("made_up", "{}")).ok
    counts = metrics.counts(metrics.tool_calls)
    assert counts == {("echo", "ok"): 1, ("echo", "failed"): 1, (UNKNOWN_TOOL, "failed"): 1}


async def test_live_sessions_are_timed_as_their_own_endpoint(make_client, fake):
    client = await make_client(engine="live", model="gpt-live-1.1")
    fake.add_fault("live_sessions", status=503, code="overloaded", times=1)
    assert (await post_call(client)).status == 502
    samples = await scrape(client)
    assert value(samples, "voicekiosk_upstream_request_duration_seconds_count", endpoint="live session") == 1
    assert value(samples, "voicekiosk_upstream_errors_total", endpoint="live session", code="upstream_error") == 1
    assert value(samples, "voicekiosk_build_info", version=__version__, engine="live", model="gpt-live-1.1") == 1


async def test_tokens_are_counted_by_model_direction_kind_and_source(settings):
    from voicekiosk.fake.wire import transcription_usage, usage
    from voicekiosk.ledger.tokens import Tokens
    from voicekiosk.upstream.record import CallRecord

    metrics = Metrics(settings, expiry=dict, cost=lambda record: None)
    call = CallRecord("rtc_m", "192.0.2.1")
    heard, page = call.count_openai(usage(2.0, 10, 3.0, 1), "model", response="resp_1"), Tokens()
    said = call.count_openai(transcription_usage(2.0, "two words"), "transcription")
    page.add(usage(1.0, 4, 1.0, 2))
    call.count_response("resp_2", page, by_page=True)  # a response the sideband missed
    metrics.call_started(call)
    metrics.call_ended(call, "page")
    counts = metrics.counts(metrics.tokens)
    assert counts[("voice", "input", "cached", "server")] == heard.text_cached + heard.audio_cached > 0
    assert counts[("voice", "input", "text", "server")] == heard.text_in
    assert counts[("voice", "output", "audio", "page")] == page.audio_out > 0
    assert counts[("transcription", "input", "audio", "server")] == said.audio_in > 0
    assert counts[("transcription", "output", "text", "server")] == said.text_out > 0
    assert sum(counts.values()) == heard.total + page.total + said.total
    assert {kind for _, _, kind, _ in counts} == {"text", "audio", "image", "cached", "other"}  # a bounded set


def test_certificate_expiry_is_read_without_cryptography_as_cryptography_reads_it(tmp_path):
    """The running server keeps ``cryptography`` out (9 MB resident): its own DER reading of
    ``notAfter`` must agree with it, for a stranger's certificates and for ours."""
    import subprocess
    import sys

    import trustme
    from cryptography import x509

    from voicekiosk.tls.store import CertStore
    from voicekiosk.watch.certs import not_valid_after

    authority = trustme.CA()
    ours = CertStore(tmp_path)
    ours.ca()
    pems = [authority.cert_pem.bytes(), authority.issue_cert("kiosk.local").cert_chain_pems[0].bytes()]
    pems.append(ours.ca_path.read_bytes())
    for pem in pems:
        assert not_valid_after(pem) == x509.load_pem_x509_certificate(pem).not_valid_after_utc
    assert not_valid_after(b"not a certificate") is None
    assert not_valid_after(pems[0].replace(b"MII", b"MIA", 1)) is None  # a broken length: no crash

    loaded = "import sys, voicekiosk.server; print('cryptography' in sys.modules)"
    assert (
        subprocess.run([sys.executable, "-c", loaded], capture_output=True, text=True, check=True).stdout == "False\n"
    )
