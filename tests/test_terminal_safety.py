"""What a device on the network sends never reaches the operator's terminal raw, and cannot flood it."""

from __future__ import annotations

import asyncio
import logging
import re

import aiohttp
from aiohttp import web

from tests.helpers import wait_for, within
from tests.served import RAW_CONTROL, serving, terminal
from voicekiosk.logsafe import BURST, PAGE_BURST, Refusals, escape

PAINT = "\x1b[2J\x1b]0;pwned\x07\r\x9b31m"  # clear screen, set title, carriage return, C1 CSI
PAINTED = r"\x1b[2J\x1b]0;pwned\x07\x0d\x9b31m"  # how it must show
FORGED = "\n[12:00:00] INFO     Access granted to 192.0.2.66"


async def exchange(port: int, request: bytes) -> bytes:
    """Send raw bytes to the server, return all it answers before closing."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(request)
        return await within(reader.read(), 10, "the answer")
    finally:
        writer.close()
        await writer.wait_closed()


def status(answer: bytes) -> int:
    return int(answer.split(b" ", 2)[1]) if answer.startswith(b"HTTP/1.") else 0


def request(path: str, host: str = "localhost", *headers: str) -> bytes:
    lines = [f"GET {path} HTTP/1.1", f"Host: {host}", "Connection: close", *headers, "", ""]
    return "\r\n".join(lines).encode("utf-8", "surrogateescape")


async def test_requests_and_events_reach_the_terminal_escaped(settings):
    async with serving(settings, verbosity=2) as served:  # -vv: the access log shows every request too
        port = served.port
        # A path that decodes to escape sequences, sent for a name we do not answer to (a refusal
        # line with path and host), with a user agent and a Host carrying raw C1 bytes.
        painted_path = "/%1b%5b2J%1b%5d0;pwned%07%0d%c2%9b31m"
        ua = "User-Agent: Mozilla \x9b\udcff"
        answer = await exchange(port, request(painted_path, "evil\udc9b.example", ua))
        assert status(answer) == 421, answer[:80]
        answer = await exchange(port, request("/%0a%5b12:00:00%5d%20INFO%20Access%20granted", "elsewhere"))
        assert status(answer) == 421, answer[:80]
        # An escape character right in a header: aiohttp's parser refuses it (a bad-request line).
        assert status(await exchange(port, request("/", "localhost", "X-Paint: \x1b[2J"))) == 400
        # A page's events: transcripts, states and errors carrying the same.
        async with aiohttp.ClientSession() as session, session.ws_connect(f"http://127.0.0.1:{port}/api/events") as ws:
            await ws.send_json({"type": "transcript", "role": "user", "text": "you " + PAINT})
            await ws.send_json({"type": "transcript", "role": "agent", "text": "agent" + FORGED})
            await ws.send_json({"type": "error", "message": "error " + PAINT})
            await wait_for(lambda: "error " + PAINTED in served.text, what="the page's error line")
        text = served.text
    raw = RAW_CONTROL.findall(text)
    assert not raw, f"raw control characters reached the terminal: {raw[:10]}\n{text[-3000:]}"
    assert "Refused GET /" + PAINTED in text  # the refusal line, escaped
    assert r"evil\udc9b.example" in text and r"Mozilla \x9b\udcff" in text  # Host and user agent
    assert r"/\x0a[12:00:00] INFO Access granted" in text  # no forged line: it stays inside its own
    assert "you " + PAINTED in text and "agent" + escape(FORGED) in text
    assert "Bad request from 127.0.0.1" in text and "Traceback" not in text


async def test_exception_text_reaches_the_terminal_escaped():
    for verbosity in (0, 1):  # plain tracebacks, and rich's
        with terminal(verbosity) as out:
            try:
                raise ValueError("header was " + PAINT)
            except ValueError:
                logging.getLogger("voicekiosk.server").exception("Unexpected error on GET /")
        text = out.getvalue()
        assert not RAW_CONTROL.search(text), text
        assert "Traceback" in text and "ValueError: header was " + PAINTED in text


async def test_a_bad_request_is_one_line_and_a_real_bug_keeps_its_traceback(aiohttp_server, settings):
    from voicekiosk.web.app import create_app

    async def broken(request: web.Request) -> web.Response:
        raise ZeroDivisionError("a bug of ours")

    app = create_app(settings)
    app.router.add_get("/broken", broken)
    with terminal(0) as out:
        server = await aiohttp_server(app, host="127.0.0.1")
        long_line = request("/" + "a" * 9000)  # over aiohttp's 8 KB limit: LineTooLong
        assert status(await exchange(server.port, long_line)) == 400
        # A body that ends before its chunked encoding says: read by our handler.
        chunked = b"POST /api/call HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/sdp\r\n"
        chunked += b"Transfer-Encoding: chunked\r\nConnection: close\r\n\r\nzz\r\nnot hex\r\n"
        assert status(await exchange(server.port, chunked)) == 400
        bad = out.getvalue()
        assert "Traceback" not in bad and "Error handling request" not in bad, bad
        assert bad.count("Bad request from 127.0.0.1") == 2, bad
        assert max(len(line) for line in bad.splitlines()) <= 160  # one line each, not a screenful
        assert status(await exchange(server.port, request("/broken"))) == 500
        await wait_for(lambda: "ZeroDivisionError: a bug of ours" in out.getvalue(), what="the traceback")
        assert "Traceback" in out.getvalue()


async def test_a_thousand_refusals_from_one_device_make_a_few_lines_and_a_count(settings):
    window = 4.0
    async with serving(settings, refusal_window=window) as served:
        kinds = [
            request("/" + "a" * 9000),  # bad request (LineTooLong)
            request("/", "evil.example"),  # unknown Host: 421
            b"POST /api/token HTTP/1.1\r\nHost: localhost\r\nOrigin: https://evil.example\r\n"
            b"Content-Length: 0\r\nConnection: close\r\n\r\n",  # cross-origin: 403
        ]
        sem = asyncio.Semaphore(32)

        async def refuse(n: int) -> int:
            async with sem:
                return status(await exchange(served.port, kinds[n % len(kinds)]))

        answers = await asyncio.gather(*(refuse(n) for n in range(1000)))
        assert sorted(set(answers)) == [400, 403, 421]
        summary = re.compile(r"… and (\d+) more from loopback in the last 4 s")
        found = await wait_for(lambda: summary.search(served.text), timeout=window + 5, what="the count")
        shown = refusal_lines(served.text)
        assert shown == BURST and shown + int(found.group(1)) == 1000, served.text
        # The next window starts afresh: a refusal is shown again, not counted.
        await exchange(served.port, kinds[1])
        await wait_for(lambda: refusal_lines(served.text) == shown + 1, what="a fresh refusal line")


def refusal_lines(text: str) -> int:
    return text.count("from 127.0.0.1") - text.count("more from 127.0.0.1")


async def test_refusal_counts_stay_bounded_however_many_devices_refuse():
    reports: list[tuple[str, int]] = []
    refusals = Refusals(lambda device, count: reports.append((device, count)), burst=1, window=0.3, max_devices=3)
    shown = [refusals.allow(f"192.0.2.{n % 200}") for n in range(1000)]
    # Three devices are tracked one by one; all the others share one count; the counts of more
    # than a few devices are told as one line.
    assert sum(shown) == 4
    await wait_for(lambda: sum(count for _, count in reports) == 996, timeout=5, what="every count told")
    assert reports == [("4 devices", 996)]


async def test_one_device_cannot_escape_its_budget_with_many_addresses():
    reports: list[tuple[str, int]] = []
    refusals = Refusals(lambda device, count: reports.append((device, count)), burst=5, window=0.3, total_burst=50)
    # Any address of its IPv6 /64 (and the IPv4-mapped form of an IPv4 address) is one device.
    same = [f"fd00:9::{n:x}" for n in range(1500)] + [f"::ffff:192.0.2.{n % 2 + 7}" for n in range(10)]
    shown = [refusals.allow(address) for address in same]
    assert sum(shown) == 5 + 2 * 5
    # Many IPv4 addresses at once (a device with aliases, or many devices): a few screens at most.
    shown = [refusals.allow(f"198.51.100.{n % 250}") for n in range(2500)]
    assert sum(shown) == 50 - 15
    await wait_for(lambda: sum(count for _, count in reports) == 1510 + 2500 - 50, timeout=5, what="the counts")
    assert len(reports) <= 2 and reports[-1][0].endswith("devices"), reports  # one batch a window


async def test_a_page_cannot_flood_the_terminal_with_what_it_reports(settings):
    """Transcripts, errors and usage a page sends are a conversation's worth of lines, not a flood."""
    async with (
        serving(settings, refusal_window=1.0) as served,
        aiohttp.ClientSession() as session,
        session.ws_connect(f"http://127.0.0.1:{served.port}/api/events") as ws,
    ):
        for n in range(PAGE_BURST + 5):
            await ws.send_json({"type": "transcript", "role": "user", "text": f"line {n}"})
        await ws.send_json({"type": "usage", "usage": {"input_tokens": 1, "output_tokens": 1}})
        await wait_for(lambda: "6 more lines from loopback" in served.text, what="the hidden lines' count")
    shown = {int(n) for n in re.findall(r"you: line (\d+)", served.text)}
    assert shown == set(range(PAGE_BURST)) and "usage" not in served.text


async def test_the_access_log_is_budgeted_per_device_too(settings):
    """-vv logs every request: a device's requests share its budget, so they cannot flood either."""
    async with serving(settings, verbosity=2, refusal_window=1.0) as served:
        async with aiohttp.ClientSession() as session:
            for _ in range(PAGE_BURST + 20):
                async with session.get(f"http://127.0.0.1:{served.port}/healthz") as response:
                    assert response.status == 200
        await wait_for(lambda: "20 more lines from loopback" in served.text, what="the hidden access lines' count")
    assert served.text.count("GET /healthz") == PAGE_BURST


def test_asyncio_warnings_pass_the_same_filter():
    """asyncio logs what goes wrong on a socket (with the peer's text in it, at times): escaped too."""
    with terminal() as out:
        logging.getLogger("asyncio").warning("SSL error from %s: %s", "192.0.2.9", PAINT)
    assert PAINTED in out.getvalue() and not RAW_CONTROL.search(out.getvalue().replace("\n", ""))
