"""What many tests need: the repo root, an SDP offer, posting a call, free ports, waiting, a PNG.

Standard library and pytest only: the namespace scripts (``python -c`` under ``unshare``)
import it too.
"""

from __future__ import annotations

import asyncio
import inspect
import json
import os
import socket
import struct
import subprocess
import sys
import time
import zlib
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parent.parent
REAL_KEY = "sk-proj-REALKEY" + "k" * 40 + "9z8y"
OFFER = "v=0\r\no=- 42 2 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\nm=audio 9 UDP/TLS/RTP/SAVPF 111\r\n"
SDP = {"Content-Type": "application/sdp"}
# Given to a veth inside a test's own namespace, where nothing else can see it. From the shared
# range (RFC 6598: carrier-grade NAT, tailnets), one of the local ranges the CA may vouch for.
LAN = "100.64.0.10"

Check = Callable[[], Any]  # returns a value, or an awaitable of one


def free_port() -> int:
    """A loopback port nobody listens on right now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


async def post_call(client: Any, offer: str = OFFER, **headers: str) -> Any:
    """POST an SDP offer to ``/api/call`` (``client``: an aiohttp TestClient)."""
    return await client.post("/api/call", data=offer, headers={**SDP, **headers})


def require_loopback_only(why: str) -> None:
    """Skip (fail, in CI) unless loopback is the only network: ``why`` it must be."""
    if [name for _, name in socket.if_nameindex() if name != "lo"]:
        problem = f"{why}: runs only where loopback is the only network (use `make test`)"
        if os.environ.get("CI"):
            pytest.fail(problem)
        pytest.skip(problem)


def call_id(response: Any) -> str:
    """The call id a 201 from ``/api/call`` names in its Location."""
    return str(response.headers["Location"].rsplit("/", 1)[-1])


async def _value(check: Check) -> Any:
    value = check()
    return await value if inspect.isawaitable(value) else value


async def wait_for(check: Check, *, timeout: float = 15.0, interval: float = 0.02, what: str = "condition") -> Any:
    """Poll ``check`` (sync or async) until it returns something truthy, for at most ``timeout`` s.

    Returns what it returned; raises AssertionError (with the last value) on time-out.
    """
    deadline = time.monotonic() + timeout
    while True:
        last = await _value(check)
        if last:
            return last
        if time.monotonic() >= deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what} (last: {last!r})")
        await asyncio.sleep(interval)


async def never(check: Check, *, within: float, interval: float = 0.02, what: str = "event") -> None:
    """Wait ``within`` seconds for an event that must not happen: ``check`` must stay falsy.

    Only for properties that are about time passing (nothing arrives after a drop, say); a
    test waits on the event that proves its point whenever there is one.
    """
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        if value := await _value(check):
            raise AssertionError(f"{what} happened: {value!r}")
        await asyncio.sleep(interval)


async def within(awaitable: Awaitable[Any], seconds: float, what: str) -> Any:
    """``await awaitable``, failing the test (not hanging it) after ``seconds``."""
    try:
        return await asyncio.wait_for(awaitable, seconds)
    except TimeoutError:
        raise AssertionError(f"timed out after {seconds} s waiting for {what}") from None


# -- network namespaces ------------------------------------------------------------------------


def require_namespaces() -> None:
    """Skip (fail, in CI) unless this process may make network namespaces (root, unshare)."""
    if subprocess.run(["unshare", "--net", "true"], capture_output=True).returncode != 0:
        if os.environ.get("CI"):
            pytest.fail("unshare --net is not permitted: CI runs the tests as root")
        pytest.skip("needs root for unshare --net")


def in_own_namespace(*args: str, timeout: float) -> subprocess.CompletedProcess[str]:
    """``python *args`` in a network namespace of its own (only what it makes exists).

    Asserts that it exited 0; the namespace dies with it.
    """
    require_namespaces()
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.run(
        ["unshare", "--net", sys.executable, *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=ROOT,
        env=env,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    return proc


def last_json(proc: subprocess.CompletedProcess[str]) -> Any:
    """What a namespace script reported: the JSON on its last line of output."""
    return json.loads(proc.stdout.strip().splitlines()[-1])


def ip(*args: str) -> None:
    subprocess.run(["ip", *args], check=True)


def loopback_up() -> None:
    """In a fresh namespace: bring loopback up (the first thing a namespace script does)."""
    ip("link", "set", "lo", "up")


def add_lan(*, ipv6: str | None = None) -> None:
    """In a namespace script: a veth pair whose end ``vk0`` has ``LAN`` (and ``ipv6``), up and settled.

    The network must not change after this returns: Chromium aborts requests in flight with
    ``ERR_NETWORK_CHANGED`` when an address appears. So the pair gets no IPv6 link-local addresses
    (which the kernel would add a moment later, after duplicate detection), and this waits until
    both ends report carrier.
    """
    ip("link", "add", "vk0", "type", "veth", "peer", "name", "vk1")
    for end in ("vk0", "vk1"):
        ip("link", "set", end, "addrgenmode", "none")
    ip("addr", "add", f"{LAN}/24", "dev", "vk0")
    if ipv6:
        ip("addr", "add", ipv6, "dev", "vk0", "nodad")
    ip("link", "set", "vk0", "up")
    ip("link", "set", "vk1", "up")
    for end in ("vk0", "vk1"):
        _wait_until_up(end)


def _wait_until_up(link: str, timeout: float = 10.0) -> None:
    """Block until ``link`` reports its operational state as up (veth carrier comes a moment late)."""
    deadline = time.monotonic() + timeout
    while " state UP " not in (shown := _link(link)):
        if time.monotonic() > deadline:
            raise AssertionError(f"{link} not up within {timeout} s: {shown}")
        time.sleep(0.01)


def _link(name: str) -> str:
    """``ip -o link show name`` (sysfs shows the host's namespace, ip shows ours)."""
    return subprocess.run(["ip", "-o", "link", "show", name], check=True, capture_output=True, text=True).stdout


def png(width: int, height: int) -> bytes:
    """A small valid PNG (solid teal), written by hand."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    rows = b"".join(b"\x00" + b"\x0f\x76\x6e" * width for _ in range(height))
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b"")
