"""A hostile device on the LAN: run inside a network namespace of its own (``unshare --net``).

It serves the real ``voicekiosk serve`` (against the fake OpenAI, both as child processes) on a
LAN address of the namespace (``tests.helpers.LAN``), then sends it a few thousand hostile
requests from that address: oversized and random paths, headers and bodies, control characters
everywhere, wrong content types, binary SDP, deep JSON, WebSocket floods of junk, slow drips and
unknown Hosts. Prints, as JSON, what came back and what the server's terminal showed. Used by
tests/test_bad_input.py.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import random
import re
import ssl
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

import aiohttp

from tests.helpers import LAN, OFFER, add_lan, free_port, loopback_up, wait_for

PORT = 18443
ESCAPES = ["\x1b[2J\x1b[H", "\x1b]0;pwned\x07", "\r", "\x9b31m", "\x7f", "\x00", "\u202e"]
RNG = random.Random(9)  # the same hostile run every time


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


class Tally:
    """What came back: a status per request, or how the connection ended."""

    def __init__(self) -> None:
        self.outcomes: Counter[str] = Counter()
        self.bodies: list[bytes] = []

    def record(self, outcome: str, body: bytes = b"") -> None:
        self.outcomes[outcome] += 1
        if body and len(self.bodies) < 5000:
            self.bodies.append(body[:4096])

    @property
    def tried(self) -> int:
        return sum(self.outcomes.values())


def junk(n: int) -> str:
    """Raw junk, control characters included (for requests written byte by byte)."""
    alphabet = "abc/%.?&=;:~-_" + "".join(ESCAPES)
    return "".join(RNG.choice(alphabet) for _ in range(n))


def encoded_junk(n: int) -> str:
    """Junk an HTTP client will send: control characters percent-encoded (%1b, %0d, %c2%9b...)."""
    pieces = [*"abc/.?&=;:~-_", "%1b%5b2J", "%0d%0a", "%c2%9b", "%00", "%7f", "%e2%80%ae", "%%", "%zz"]
    return "".join(RNG.choice(pieces) for _ in range(n))


async def raw(tally: Tally, context: ssl.SSLContext, request: bytes, *, read_for: float = 3.0) -> None:
    """Send ``request`` as it is over TLS and read what comes back (bounded)."""
    try:
        reader, writer = await asyncio.wait_for(asyncio.open_connection(LAN, PORT, ssl=context, server_hostname=LAN), 5)
    except (TimeoutError, OSError, ssl.SSLError):
        tally.record("refused-connection")
        return
    try:
        writer.write(request)
        await writer.drain()
        answer = await asyncio.wait_for(reader.read(65536), read_for)
        status = answer.split(b" ", 2)[1].decode(errors="replace") if answer.startswith(b"HTTP/") else "closed"
        tally.record(status, answer)
    except (TimeoutError, OSError, ssl.SSLError, IndexError):
        tally.record("closed")
    finally:
        writer.close()
        with contextlib.suppress(OSError, ssl.SSLError, asyncio.TimeoutError):
            await asyncio.wait_for(writer.wait_closed(), 2)


def raw_requests() -> list[bytes]:
    host = f"Host: {LAN}:{PORT}\r\n".encode()
    requests = [
        b"GET /" + b"a" * 10_000 + b" HTTP/1.1\r\n" + host + b"\r\n",  # request line over 8 KB
        b"GET /%1b%5b2J%1b%5bH HTTP/1.1\r\n" + host + b"\r\n",
        b"GET /\x1b[2J\x1b[H HTTP/1.1\r\n" + host + b"\r\n",
        b"GET / HTTP/1.1\r\n" + host + b"User-Agent: \x1b]0;pwned\x07\r\n\r\n",
        b"GET / HTTP/1.1\r\n" + host + b"X-Big: " + b"b" * 20_000 + b"\r\n\r\n",
        b"GET / HTTP/1.1\r\n" + host + b"".join(b"X-%d: y\r\n" % i for i in range(300)) + b"\r\n",
        b"GET / HTTP/1.1\r\nHost: evil.example\x1b[31m\r\n\r\n",
        b"GET / HTTP/1.1\r\nHost: attacker.test\r\n\r\n",
        b"\x16\x03\x01\x00\xff" + bytes(RNG.getrandbits(8) for _ in range(300)),
        b"POST /api/call HTTP/1.1\r\n" + host + b"Content-Type: application/sdp\r\nContent-Length: 99999999\r\n\r\nv=0",
        b"POST /api/call HTTP/1.1\r\n" + host + b"Transfer-Encoding: chunked\r\nContent-Length: 4\r\n\r\nzzzz",
        b"GET /\r\n\r\n",
        b"BREW /pot HTTP/1.1\r\n" + host + b"\r\n",
    ]
    for _ in range(150):
        requests.append(f"GET /{junk(RNG.randint(1, 300))} HTTP/1.1\r\n".encode("utf-8", "replace") + host + b"\r\n")
    return requests


async def http_requests(tally: Tally, session: aiohttp.ClientSession, base: str, cookie: dict[str, str]) -> None:
    """Well-formed HTTP, hostile content: with the access token and without."""
    sdp = {"Content-Type": "application/sdp"}
    kinds: list[tuple[str, str, dict[str, Any]]] = []
    for _ in range(300):
        kinds += [
            ("GET", f"/{encoded_junk(RNG.randint(1, 200))}", {}),
            ("GET", f"/static/{encoded_junk(20)}", {}),
            ("POST", "/api/call", {"data": bytes(RNG.getrandbits(8) for _ in range(200)), "headers": sdp}),
            ("POST", "/api/call", {"data": OFFER.replace("m=audio", junk(20)), "headers": sdp}),
            ("POST", "/api/call", {"data": OFFER, "headers": {"Content-Type": encoded_junk(30)}}),
            ("POST", "/api/token", {"data": b"x" * 70_000}),
            ("DELETE", f"/api/call/{encoded_junk(40)}", {}),
            ("GET", "/api/config", {"headers": {"User-Agent": encoded_junk(100), "Referer": encoded_junk(50)}}),
        ]
    kinds.append(("POST", "/api/call", {"data": b"v=0" + b"a" * 2_000_000, "headers": sdp}))
    for index, (method, path, kw) in enumerate(kinds):
        cookies = cookie if (index // 8) % 2 else {}  # every kind of request both with the token and without
        try:
            async with session.request(method, base + path, cookies=cookies, allow_redirects=False, **kw) as r:
                tally.record(str(r.status), await r.read() + str(dict(r.headers)).encode())
        except (TimeoutError, aiohttp.ClientError, ValueError):
            tally.record("closed")


async def websocket_floods(tally: Tally, session: aiohttp.ClientSession, base: str, cookie: dict[str, str]) -> None:
    deep = "[" * 20_000 + "]" * 20_000
    events = (
        [json.dumps({"type": "transcript", "role": "user", "text": f"hello {e} there"}) for e in ESCAPES]
        + [json.dumps({"type": "error", "message": e * 50}) for e in ESCAPES]
        + [json.dumps({"type": "call", "call_id": f"rtc_{i:04d}"}) for i in range(50)]
    )
    for attempt in range(20):
        try:
            headers = {"Origin": base, "Cookie": "; ".join(f"{k}={v}" for k, v in cookie.items())}
            async with session.ws_connect(
                base.replace("https", "wss") + "/api/events", headers=headers, max_msg_size=0
            ) as ws:
                for message in events:
                    await ws.send_str(message)
                for _ in range(200):
                    await ws.send_str(junk(50))
                await ws.send_bytes(bytes(RNG.getrandbits(8) for _ in range(1000)))
                await ws.send_str(deep)
                if attempt == 0:
                    await ws.send_str("x" * 1_000_000)
                tally.record("ws")
        except (TimeoutError, aiohttp.ClientError, ConnectionError):
            tally.record("ws-refused")


async def slow_drips(tally: Tally, context: ssl.SSLContext, n: int = 5) -> list[asyncio.StreamWriter]:
    """Connections that send half a request and then nothing (closed at the end of the run)."""
    writers = []
    for _ in range(n):
        try:
            _, writer = await asyncio.open_connection(LAN, PORT, ssl=context, server_hostname=LAN)
            writer.write(b"GET / HTTP/1.1\r\nHost: " + LAN.encode())
            await writer.drain()
            writers.append(writer)
            tally.record("drip")
        except (OSError, ssl.SSLError):
            tally.record("refused-connection")
    return writers


async def attack(data: Path, server_pid: int) -> dict[str, Any]:
    await wait_for(lambda: (data / "server.pem").exists(), timeout=30, what="the certificate")
    context = ssl.create_default_context(cafile=str(data / "ca.pem"))
    base = f"https://{LAN}:{PORT}"
    tally = Tally()
    connector = aiohttp.TCPConnector(ssl=context, limit=20)
    async with aiohttp.ClientSession(connector=connector, timeout=aiohttp.ClientTimeout(total=10)) as session:

        async def healthy() -> bool:
            with contextlib.suppress(aiohttp.ClientError, asyncio.TimeoutError):
                async with session.get(f"https://127.0.0.1:{PORT}/healthz") as r:
                    return r.status == 200
            return False

        await wait_for(healthy, timeout=30, what="the server")
        token = (data / "access-token").read_text().strip()
        await asyncio.sleep(1)  # settled: the idle baseline is the measurement
        rss_before = rss_mb(server_pid)
        drips = await slow_drips(tally, context)
        for batch in range(0, len(requests := raw_requests()), 20):
            await asyncio.gather(*(raw(tally, context, r) for r in requests[batch : batch + 20]))
        await http_requests(tally, session, base, {"voicekiosk_access": token})
        await websocket_floods(tally, session, base, {"voicekiosk_access": token})
        for writer in drips:
            writer.close()
        started = time.monotonic()
        still_ok = await healthy()
        async with session.get(base + "/", cookies={"voicekiosk_access": token}) as r:
            page_ok = r.status == 200
        answer_s = time.monotonic() - started
    await asyncio.sleep(3)  # quiet again: what the server still holds is the measurement
    return {
        "tried": tally.tried,
        "outcomes": dict(tally.outcomes),
        "healthz_ok": still_ok,
        "page_ok": page_ok,
        "answer_s": answer_s,
        "rss_before": rss_before,
        "rss_after": rss_mb(server_pid),
        "bodies": [b.decode("utf-8", "replace") for b in tally.bodies],
    }


def main(root: Path) -> dict[str, Any]:
    loopback_up()
    add_lan()
    data = root / "data"
    fake_port = free_port()
    fake = subprocess.Popen(
        [sys.executable, "-m", "voicekiosk.fake", "--port", str(fake_port)], stdout=subprocess.PIPE, text=True
    )
    terminal = root / "terminal.txt"
    try:
        key = (fake.stdout.readline() if fake.stdout else "").split()[-1]
        env = {
            **os.environ,
            "OPENAI_API_KEY": key,
            "OPENAI_BASE_URL": f"http://127.0.0.1:{fake_port}/v1",
            "COLUMNS": "120",
        }
        args = [
            "serve",
            "--host",
            "0.0.0.0",
            "--port",
            str(PORT),
            "--http-port",
            str(free_port()),
            "--data-dir",
            str(data),
        ]
        with terminal.open("w") as out:
            server = subprocess.Popen([sys.executable, "-m", "voicekiosk", *args], env=env, stdout=out, stderr=out)
            try:
                result = asyncio.run(attack(data, server.pid))
            finally:
                server.terminate()
                server.wait(30)
        result["exit_code"] = server.returncode
    finally:
        fake.terminate()
        fake.wait(30)
    output = terminal.read_text(encoding="utf-8", errors="replace")
    result["terminal_lines"] = len(output.splitlines())
    result["traceback"] = "Traceback" in output
    result["controls"] = sorted({hex(ord(c)) for c in re.findall(r"[\x00-\x08\x0b-\x1f\x7f-\x9f\u202e]", output)})
    result["key_in_terminal"] = key in output
    result["key_in_answers"] = any(key in body for body in result.pop("bodies"))
    result["terminal_tail"] = output[-3000:]
    return result


if __name__ == "__main__":
    with tempfile.TemporaryDirectory() as tmp:
        print(json.dumps(main(Path(tmp))))
