"""sd_notify: a real ``voicekiosk serve --demo`` tells a real datagram socket it is ready, alive
(from its event loop: a stuck loop stops the pings), how many calls it has, and that it stops."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import pytest

from tests.helpers import SDP, call_id, free_port, within
from voicekiosk.service.notify import Systemd


class Manager:
    """systemd's side of ``NOTIFY_SOCKET``: a bound datagram socket, and what came in on it."""

    def __init__(self, sock: socket.socket, name: str) -> None:
        self.sock = sock
        self.name = name  # as NOTIFY_SOCKET spells it
        self.heard: list[tuple[float, dict[str, str]]] = []

    async def next(self, timeout: float = 10.0) -> dict[str, str]:
        data = await within(asyncio.get_running_loop().sock_recv(self.sock, 4096), timeout, "a notification")
        fields = dict(line.split("=", 1) for line in data.decode().split("\n"))
        self.heard.append((time.monotonic(), fields))
        return fields

    async def until(self, key: str, value: str | None = None, timeout: float = 10.0) -> dict[str, str]:
        """The next notification that sets ``key`` (to ``value``), skipping watchdog pings."""
        deadline = time.monotonic() + timeout
        while True:
            fields = await self.next(max(0.1, deadline - time.monotonic()))
            if key in fields and value in (None, fields[key]):
                return fields


@contextlib.contextmanager
def manager(tmp_path: Path, abstract: bool) -> Iterator[Manager]:
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.setblocking(False)
    if abstract:
        name = f"voicekiosk-test-{uuid.uuid4().hex}"
        sock.bind("\0" + name)
        spelled = "@" + name
    else:
        spelled = str(tmp_path / "notify")
        sock.bind(spelled)
    with sock:
        yield Manager(sock, spelled)


@contextlib.asynccontextmanager
async def served(tmp_path: Path, env: dict[str, str], port: int) -> AsyncIterator[asyncio.subprocess.Process]:
    args = ["serve", "--demo", "--host", "127.0.0.1", "--port", str(port), "--http-port", "0", "--no-tls"]
    args += ["--data-dir", str(tmp_path / "data")]
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "voicekiosk", *args, env={**os.environ, "OPENAI_API_KEY": "", **env},
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
    )  # fmt: skip
    try:
        yield proc
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()


@pytest.mark.parametrize("abstract", [False, True], ids=["path", "abstract"])
async def test_serve_tells_systemd_ready_alive_and_stopping(tmp_path: Path, abstract: bool):
    port = free_port()
    with manager(tmp_path, abstract) as systemd:
        env = {"NOTIFY_SOCKET": systemd.name, "WATCHDOG_USEC": "400000"}
        async with served(tmp_path, env, port) as proc:
            ready = await systemd.next(timeout=30)
            # Ready means listening: the port answers now.
            _, writer = await within(asyncio.open_connection("127.0.0.1", port), 5, "a connection")
            writer.close()
            assert ready == {"READY": "1", "STATUS": f"serving on port {port} (realtime), 0 calls"}
            pings = [await systemd.until("WATCHDOG", "1") for _ in range(3)]
            assert pings == [{"WATCHDOG": "1"}] * 3
            proc.send_signal(signal.SIGTERM)
            stopping = await systemd.until("STOPPING", "1")
            assert stopping["STATUS"].startswith("stopping")
            assert await within(proc.wait(), 20, "the server to exit") == 0


@pytest.mark.slow
async def test_the_status_line_counts_the_calls(tmp_path: Path):
    from tests.rtc_client import Client

    port = free_port()
    with manager(tmp_path, abstract=False) as systemd:
        async with served(tmp_path, {"NOTIFY_SOCKET": systemd.name}, port) as proc:
            await systemd.until("READY", "1", timeout=30)
            page = Client()
            try:
                async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as client:
                    await page.pc.setLocalDescription(await page.pc.createOffer())
                    answer = await client.post("/api/call", content=page.pc.localDescription.sdp, headers=SDP)
                    assert answer.status_code == 201, answer.text
                    assert (await systemd.until("STATUS"))["STATUS"] == f"serving on port {port} (realtime), 1 call"
                    await client.delete(f"/api/call/{call_id(answer)}")
                    assert (await systemd.until("STATUS"))["STATUS"].endswith(", 0 calls")
            finally:
                await page.close()
            proc.send_signal(signal.SIGTERM)
            assert await within(proc.wait(), 20, "the server to exit") == 0


async def test_a_stuck_event_loop_stops_the_watchdog_pings(tmp_path: Path):
    with manager(tmp_path, abstract=False) as systemd:
        alive = asyncio.create_task(Systemd(systemd.name, watchdog=0.05).keep_alive())
        try:
            for _ in range(3):
                await systemd.until("WATCHDOG")
            time.sleep(0.6)  # the loop is stuck (a blocking call): twelve pings would be due
            sent = 0
            with contextlib.suppress(BlockingIOError):
                while sent < 20:
                    systemd.sock.recv(4096)
                    sent += 1
            assert sent <= 1  # none while it was stuck (one may have left just before)
            await systemd.until("WATCHDOG")  # and they go on once it runs again
        finally:
            alive.cancel()
            await asyncio.gather(alive, return_exceptions=True)


def test_systemds_variables_are_taken_from_the_environment_for_this_process_only():
    environ = {"NOTIFY_SOCKET": "@x", "WATCHDOG_USEC": "30000000", "WATCHDOG_PID": str(os.getpid()), "HOME": "/h"}
    systemd = Systemd.from_environ(environ)
    assert (systemd.address, systemd.watchdog) == ("\0x", 15.0)
    assert environ == {"HOME": "/h"}  # children (the kiosk's browser, MCP servers) do not inherit them
    other = Systemd.from_environ({"NOTIFY_SOCKET": "/run/n", "WATCHDOG_USEC": "30000000", "WATCHDOG_PID": "1"})
    assert (other.address, other.watchdog) == ("/run/n", None)  # another process's watchdog
    nobody = Systemd.from_environ({"WATCHDOG_USEC": "30000000"})
    assert (nobody.address, nobody.watchdog) == (None, None)
    assert not nobody.notify("READY=1")


def test_a_missing_manager_is_said_once_and_does_not_stop_the_service(tmp_path: Path, caplog: pytest.LogCaptureFixture):
    systemd = Systemd(str(tmp_path / "gone"))
    assert not systemd.notify("READY=1")
    assert not systemd.notify("STATUS=x")
    assert len([r for r in caplog.records if "cannot tell systemd" in r.getMessage()]) == 1
