"""Connection bounds on a real server over loopback: caps per device, slow headers, idle keep-alive."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import ssl
import time
from collections.abc import AsyncIterator

import aiohttp
import pytest

from tests.helpers import in_own_namespace, last_json, never, wait_for, within
from tests.served import serving
from voicekiosk.logsafe import BURST
from voicekiosk.web.limits import LIMITS, Limits, Tally

Stream = tuple[asyncio.StreamReader, asyncio.StreamWriter]


@contextlib.asynccontextmanager
async def connections(port: int, count: int, **kw: object) -> AsyncIterator[list[Stream]]:
    """``count`` idle connections to the server (closed at the end)."""
    streams: list[Stream] = []
    try:
        for _ in range(count):
            streams.append(await asyncio.open_connection("127.0.0.1", port, **kw))  # type: ignore[arg-type]
        yield streams
    finally:
        for _, writer in streams:
            writer.close()
        for _, writer in streams:
            with contextlib.suppress(OSError, ssl.SSLError):
                await writer.wait_closed()


async def closed_by_server(reader: asyncio.StreamReader, seconds: float) -> bool:
    """Wait up to ``seconds`` for the server to close: True if it did (EOF or reset), having sent nothing."""
    try:
        return await within(reader.read(), seconds, "the server to close") == b""
    except ConnectionResetError:
        return True


async def healthz(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> bytes:
    """One keep-alive request on an open connection; the status line."""
    writer.write(b"GET /healthz HTTP/1.1\r\nHost: localhost\r\n\r\n")
    head = await within(reader.readuntil(b"\r\n\r\n"), 5, "the answer's head")
    length = next(int(h.split(b":")[1]) for h in head.split(b"\r\n") if h.lower().startswith(b"content-length"))
    await reader.readexactly(length)
    return head.split(b"\r\n", 1)[0]


async def test_a_device_over_its_connection_cap_is_closed_at_once_then_served_again(settings):
    # Loopback's own cap here; a LAN device's (per_client) is held in tests/lan_flood.py.
    async with serving(settings, limits=Limits(loopback=4)) as served, connections(served.port, 4) as held:
        assert served.server.connections.held("127.0.0.1") == 4
        async with connections(served.port, 1) as [(reader, _)]:
            assert await closed_by_server(reader, 2)
        await wait_for(lambda: "Refused a connection from 127.0.0.1: 4 already open" in served.text, what="the line")
        # The connections it holds are served; once one closes, a new one is let in.
        assert await healthz(*held[0]) == b"HTTP/1.1 200 OK"
        held[1][1].close()
        await wait_for(lambda: served.server.connections.held("127.0.0.1") == 3, what="the count to drop")
        async with connections(served.port, 1) as [stream]:
            assert await healthz(*stream) == b"HTTP/1.1 200 OK"
    assert served.server.connections.held("127.0.0.1") == 0 and served.server.connections.lan == 0


async def test_websockets_over_the_cap_get_429_then_one_is_let_in_again(settings):
    async with serving(settings, limits=Limits(websockets_loopback=2)) as served:  # loopback: a device too
        url = f"http://127.0.0.1:{served.port}/api/events"
        async with aiohttp.ClientSession() as session:
            first, second = await session.ws_connect(url), await session.ws_connect(url)
            with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
                await session.ws_connect(url)
            assert refused.value.status == 429
            await first.close()
            third = await within(_connect_when_free(session, url), 5, "a free WebSocket slot")
            await second.close()
            await third.close()
        assert "Refused a WebSocket from 127.0.0.1: 2 already open from this device" in served.text


async def _connect_when_free(session: aiohttp.ClientSession, url: str) -> aiohttp.ClientWebSocketResponse:
    # The server counts a socket down when its handler ends, just after the close handshake.
    for _ in range(100):
        try:
            return await session.ws_connect(url)
        except aiohttp.WSServerHandshakeError as exc:
            assert exc.status == 429
            await asyncio.sleep(0.05)
    raise AssertionError("the WebSocket slot never came free")


@pytest.mark.parametrize(
    ("tls", "first"),
    [(False, b""), (True, b""), (False, b"\r\n\r\n")],  # blank lines first: the parser skips them
    ids=["http", "https", "blank-lines-first"],
)
async def test_a_client_dripping_its_headers_is_cut_off(settings, tls, first):
    settings = dataclasses.replace(settings, tls=tls)
    async with serving(settings, limits=Limits(head_timeout=1.0)) as served:
        context = ssl.create_default_context(cafile=str(settings.data_dir / "ca.pem")) if tls else None
        async with connections(served.port, 1, ssl=context, server_hostname="localhost" if tls else None) as streams:
            [(reader, writer)], start = streams, time.monotonic()
            writer.write(first + b"GET / HTTP/1.1\r\nHost: localhost\r\n")

            async def drip() -> None:
                for n in range(100):  # a header line every 0.1 s: never the blank line that ends them
                    writer.write(b"X-%d: y\r\n" % n)
                    await asyncio.sleep(0.1)

            dripping = asyncio.create_task(drip())
            try:
                assert await closed_by_server(reader, 5)
            finally:
                dripping.cancel()
            assert 0.9 <= time.monotonic() - start < 3
            # A client that sent its headers in time keeps its connection past the head timeout.
            async with connections(served.port, 1, ssl=context, server_hostname="localhost" if tls else None) as [ok]:
                assert await healthz(*ok) == b"HTTP/1.1 200 OK"
                await never(lambda: ok[0].at_eof(), within=1.5, what="the served connection closing")
                assert await healthz(*ok) == b"HTTP/1.1 200 OK"
        if tls:  # one that never even starts its TLS handshake is cut off too
            async with connections(served.port, 1) as [(reader, _)]:
                start = time.monotonic()
                assert await closed_by_server(reader, 5)
                assert time.monotonic() - start < 3


async def test_an_idle_keep_alive_connection_is_closed_after_the_keepalive_timeout(settings):
    async with serving(settings, limits=Limits(keepalive_timeout=1.0)) as served, connections(served.port, 1) as [s]:
        assert await healthz(*s) == b"HTTP/1.1 200 OK"
        start = time.monotonic()
        assert await closed_by_server(s[0], 5)
        assert 0.9 <= time.monotonic() - start < 3


@pytest.mark.slow
def test_one_lan_device_flooding_leaves_everyone_else_served(tmp_path):
    """tests/lan_flood.py, in a namespace of its own: 200 WebSockets and 1,200 idle sockets from one address."""
    from tests.lan_flood import HEAD_TIMEOUT, SOCKETS

    seen = last_json(in_own_namespace("-m", "tests.lan_flood", str(tmp_path / "data"), timeout=120))
    assert seen["websockets"].count(101) == LIMITS.websockets_per_client, seen
    # The rest: 429 once the device has its WebSockets, or closed at once over its connection cap.
    assert set(seen["websockets"]) == {0, 101, 429} and len(seen["websockets"]) == SOCKETS, seen
    assert seen["held"] == LIMITS.per_client, seen  # of the 1,200, the rest were closed at once
    assert seen["healthz"][0] == 200 and seen["healthz"][1] < 1, seen
    assert seen["page"][0] == 200 and seen["page"][1] < 1, seen
    assert HEAD_TIMEOUT - 0.5 < seen["slowloris_cut_after"] < HEAD_TIMEOUT + 3, seen
    assert 1 <= seen["refusal_lines"] <= BURST, seen  # a thousand refusals, a few lines


def test_loopback_keeps_its_room_when_the_lan_fills_the_total():
    tally = Tally(per_client=2, total=3, loopback=2)
    assert [tally.take("192.0.2.1") for _ in range(3)] == [None, None, "2 already open from this device"]
    assert tally.take("192.0.2.2") is None
    assert tally.take("192.0.2.3") == "3 already open from the LAN"
    # Loopback is one device (any loopback address), with its own cap, outside the LAN's total.
    assert tally.take("127.0.0.1") is None and tally.take("::1") is None
    assert tally.take("127.0.0.2") == "2 already open from this device"
    tally.give("192.0.2.1")
    assert tally.take("192.0.2.3") is None and tally.lan == 3
