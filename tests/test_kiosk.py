"""Kiosk mode: finding the browser, its flags, keeping it alive, and the real thing end to end."""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.browser import CHROMIUM, chromium_args, require_isolated_browser, state
from tests.helpers import free_port, wait_for
from voicekiosk.browsers import find_browser
from voicekiosk.errors import StartupError
from voicekiosk.kiosk import BrowserSupervisor, check_display, kiosk_command
from voicekiosk.web.appkeys import ACCESS, EVENTS


def fake_browser(tmp_path: Path, body: str) -> Path:
    script = tmp_path / "fake-browser"
    script.write_text(f'#!/bin/sh\necho "$@" >> {tmp_path / "starts"}\n{body}\n')
    script.chmod(0o755)
    return script


def test_find_browser_explains_what_to_install(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("PATH", str(tmp_path))
    if Path("/Applications/Google Chrome.app").exists():  # an app bundle is a directory
        pytest.skip("a macOS Chrome is installed")
    with pytest.raises(StartupError, match="apt install chromium"):
        find_browser(None)
    with pytest.raises(StartupError, match="--browser: /nowhere/chrome is not an executable browser"):
        find_browser("/nowhere/chrome")
    own = fake_browser(tmp_path, "exit 0")
    assert find_browser(str(own)) == str(own)
    assert find_browser("fake-browser") == str(own)  # looked up on PATH


def test_no_display_is_a_clear_startup_error(monkeypatch: pytest.MonkeyPatch):
    if not sys.platform.startswith("linux"):
        pytest.skip("Linux only")
    monkeypatch.delenv("DISPLAY", raising=False)
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)
    with pytest.raises(StartupError, match="No display"):
        check_display()
    monkeypatch.setenv("DISPLAY", ":0")
    check_display()


def test_the_kiosk_trusts_only_our_key_and_grants_only_the_microphone(tmp_path: Path):
    command = kiosk_command("/usr/bin/chromium", "https://localhost:8116/?autostart", tmp_path, "SPKI=", ["--x"])
    assert command[0] == "/usr/bin/chromium" and command[-1] == "https://localhost:8116/?autostart"
    assert "--kiosk" in command and "--use-fake-ui-for-media-stream" in command
    assert "--ignore-certificate-errors-spki-list=SPKI=" in command
    assert "--ignore-certificate-errors" not in command
    assert "--use-fake-device-for-media-stream" not in command  # the real microphone
    assert f"--user-data-dir={tmp_path}" in command and "--x" in command


def test_a_window_for_a_try_is_still_pinned_to_our_key(tmp_path: Path):
    command = kiosk_command("/usr/bin/chromium", "https://localhost:8116/?a", tmp_path, "SPKI=", window=True)
    assert "--kiosk" not in command and command[-1] == "--app=https://localhost:8116/?a"
    assert "--ignore-certificate-errors-spki-list=SPKI=" in command and "--ignore-certificate-errors" not in command


async def test_a_browser_that_dies_is_restarted_with_back_off(tmp_path: Path):
    supervisor = BrowserSupervisor([str(fake_browser(tmp_path, "exit 3")), "--kiosk", "URL"])
    stop = asyncio.Event()
    task = asyncio.create_task(supervisor.run(stop))
    started = time.monotonic()
    starts = tmp_path / "starts"
    # The browser's own line, not the supervisor's count: a start counted may not have run yet.
    await wait_for(
        lambda: starts.exists() and len(starts.read_text().splitlines()) >= 3, timeout=10, what="three starts"
    )
    elapsed = time.monotonic() - started
    assert elapsed >= 2.5  # 1 s, then 2 s between the restarts: no tight loop
    stop.set()
    await asyncio.wait_for(task, 5)
    assert starts.read_text().splitlines()[:3] == ["--kiosk URL"] * 3


async def test_only_the_kiosks_own_page_beats(make_client, caplog: pytest.LogCaptureFixture):
    """A ``?kiosk`` socket from this machine is the kiosk's page; another page's words are not its
    beat, nor are those of a page relayed by a proxy (on loopback, but from anywhere)."""
    caplog.set_level(logging.INFO, logger="voicekiosk")
    client = await make_client()
    hub = client.server.app[EVENTS]
    relayed = {"X-Forwarded-For": "203.0.113.9", "Authorization": f"Bearer {client.server.app[ACCESS].token}"}
    for path, headers in (("/api/events", {}), ("/api/events?kiosk", relayed)):
        async with client.ws_connect(path, headers=headers) as ws:
            await ws.send_json({"type": "alive"})
            await ws.send_json({"type": "transcript", "role": "user", "text": f"done {path}"})
            await wait_for(lambda p=path: f"you: done {p}" in caplog.text, timeout=5, what="its words handled")
    assert hub.kiosk_heard() is None
    before = time.monotonic()
    async with client.ws_connect("/api/events?kiosk") as ws:
        await ws.send_json({"type": "alive", "hidden": False})
        await wait_for(lambda: hub.kiosk_heard() is not None, timeout=5, what="the kiosk's beat")
        assert before <= hub.kiosk_heard() <= time.monotonic()
        # Hidden, its timers may be held to one a minute: its word counts for longer.
        await ws.send_json({"type": "alive", "hidden": True})
        await wait_for(lambda: hub.kiosk_heard() > time.monotonic() + 100, timeout=5, what="the hidden beat")
        await ws.send_json({"type": "alive", "hidden": False})
        await wait_for(lambda: hub.kiosk_heard() <= time.monotonic(), timeout=5, what="shown again")


def _starts(tmp_path: Path) -> int:
    starts = tmp_path / "starts"
    return len(starts.read_text().splitlines()) if starts.exists() else 0


async def test_a_page_that_stops_beating_is_restarted_like_a_crash(tmp_path: Path):
    beat: list[float] = []  # when the page last spoke, as the events hub hears it
    supervisor = BrowserSupervisor(
        [str(fake_browser(tmp_path, "exec sleep 60"))],
        heard=lambda: beat[-1] if beat else None,
        silent_after=0.6,
        first_word_within=30,
    )
    stop = asyncio.Event()
    task = asyncio.create_task(supervisor.run(stop))
    try:
        await wait_for(lambda: _starts(tmp_path) == 1, timeout=10, what="the browser")
        for _ in range(12):  # the page beats for 1.2 s, twice the silence allowed: left alone
            beat.append(time.monotonic())
            await asyncio.sleep(0.1)
        assert (supervisor.hangs, _starts(tmp_path)) == (0, 1)
        # It hangs: no beat now. Restarted once the silence is long enough, after the usual 1 s.
        await wait_for(lambda: supervisor.hangs == 1, timeout=5, what="the hung page noticed")
        assert time.monotonic() - beat[-1] >= 0.6
        await wait_for(lambda: _starts(tmp_path) == 2, timeout=5, what="the browser restarted")
        # The new browser's page has not spoken yet: it has first_word_within, not the old page's silence.
        assert supervisor.hangs == 1
    finally:
        stop.set()
        await asyncio.wait_for(task, 10)


async def test_a_page_never_heard_from_is_restarted(tmp_path: Path):
    supervisor = BrowserSupervisor(
        [str(fake_browser(tmp_path, "exec sleep 60"))], heard=lambda: None, first_word_within=0.5
    )
    stop = asyncio.Event()
    task = asyncio.create_task(supervisor.run(stop))
    started = time.monotonic()
    try:
        await wait_for(lambda: _starts(tmp_path) == 2, timeout=10, what="a restart")
        assert supervisor.hangs >= 1 and time.monotonic() - started >= 1.5  # 0.5 s unheard, then 1 s back-off
    finally:
        stop.set()
        await asyncio.wait_for(task, 10)
    assert supervisor.process is not None and supervisor.process.returncode is not None


async def test_stopping_ends_the_browser_and_its_children(tmp_path: Path):
    browser = fake_browser(tmp_path, f"sleep 60 & echo $! > {tmp_path / 'child'}\nwait")
    supervisor = BrowserSupervisor([str(browser)])
    stop = asyncio.Event()
    task = asyncio.create_task(supervisor.run(stop))
    await wait_for(lambda: (tmp_path / "child").exists(), timeout=10, what="the browser")
    child = int((tmp_path / "child").read_text())
    stop.set()
    await asyncio.wait_for(task, 10)
    assert supervisor.process is not None and supervisor.process.returncode is not None
    await wait_for(lambda: not _alive(child), timeout=5, what="its child to end")
    assert supervisor.starts == 1


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return Path(f"/proc/{pid}/stat").exists() and Path(f"/proc/{pid}/stat").read_text().split()[2] != "Z"


@pytest.mark.browser
@pytest.mark.parametrize("model", [[], ["--model", "gpt-live-1.1"]], ids=["realtime", "live"])
async def test_kiosk_mode_shows_the_talking_page_and_survives_a_browser_crash(
    tmp_path: Path, mic_wav: Path, model: list[str]
):
    """`voicekiosk kiosk --demo` with Debian's Chromium (headless here), driven over CDP; with
    either engine (a gpt-live-* model picks GPT-Live)."""
    require_isolated_browser()
    from playwright.async_api import async_playwright

    port, cdp = free_port(), free_port()
    proc = _kiosk_process(tmp_path, mic_wav, port, cdp, model)
    try:
        async with async_playwright() as playwright:
            page = await _kiosk_page(playwright, cdp)
            assert page.url == f"https://127.0.0.1:{port}/?autostart&kiosk"
            await wait_for(lambda: _state_in(page, "listening", "user-speaking", "thinking", "agent-speaking"),
                           timeout=20, what="the kiosk page connected")  # fmt: skip
            first = await page.evaluate("performance.timeOrigin")
            # The browser dies; voicekiosk starts it again and the page connects again.
            subprocess.run(["pkill", "-KILL", "-f", _browser_pattern(cdp)], check=False)
            await wait_for(lambda: not _browser_running(cdp), timeout=10, what="the browser gone")
            page = await _kiosk_page(playwright, cdp, timeout=20)
            assert await page.evaluate("performance.timeOrigin") != first
            await wait_for(lambda: _state_in(page, "listening", "user-speaking", "thinking", "agent-speaking"),
                           timeout=20, what="the restarted kiosk page connected")  # fmt: skip
        proc.send_signal(signal.SIGTERM)
        output = proc.communicate(timeout=20)[0].decode()
    finally:
        proc.kill()
        subprocess.run(["pkill", "-KILL", "-f", _browser_pattern(cdp)], check=False)
    assert proc.returncode == 0, output
    assert ("(live)" if model else "(realtime)") in output  # the banner names the engine
    assert "browser exited" in output and output.count("browser started") >= 2
    assert not _browser_running(cdp)


@pytest.mark.browser
async def test_a_hung_kiosk_page_is_restarted(tmp_path: Path, mic_wav: Path):
    """The page's main thread spins (as a page stuck in a loop would): its beats stop, and the
    kiosk restarts the browser, whose new page connects again."""
    require_isolated_browser()
    from playwright.async_api import async_playwright

    port, cdp = free_port(), free_port()
    proc = _kiosk_process(tmp_path, mic_wav, port, cdp, ["--hung-after", "12"])
    try:
        async with async_playwright() as playwright:
            page = await _kiosk_page(playwright, cdp)
            await wait_for(lambda: _state_in(page, "listening", "user-speaking", "thinking", "agent-speaking"),
                           timeout=20, what="the kiosk page connected")  # fmt: skip
            first, old = await page.evaluate("performance.timeOrigin"), _browser_pids(cdp)
            await page.evaluate("setTimeout(() => { for (;;); }, 0)")  # hangs once this returns
            hung = time.monotonic()
            # Its last beat was at most 10 s before: 12 s of silence from then, 1 s back-off, a start.
            await wait_for(lambda: _browser_pids(cdp) - old == _browser_pids(cdp) != set(), timeout=45,
                           interval=0.5, what="a new browser, the hung one gone")  # fmt: skip
            assert time.monotonic() - hung >= 2  # not at once: after the silence
            page = await _kiosk_page(playwright, cdp, timeout=20)
            assert await page.evaluate("performance.timeOrigin") != first
            await wait_for(lambda: _state_in(page, "listening", "user-speaking", "thinking", "agent-speaking"),
                           timeout=20, what="the restarted kiosk page connected")  # fmt: skip
        proc.send_signal(signal.SIGTERM)
        output = proc.communicate(timeout=20)[0].decode()
    finally:
        proc.kill()
        subprocess.run(["pkill", "-KILL", "-f", _browser_pattern(cdp)], check=False)
    assert proc.returncode == 0, output
    assert "the page has not been heard from for 12 s: it hangs" in output
    assert output.count("browser started") >= 2
    assert not _browser_running(cdp)


def _kiosk_process(tmp_path: Path, mic_wav: Path, port: int, cdp: int, extra_args: list[str]) -> subprocess.Popen:
    """`voicekiosk kiosk --demo` with Debian's Chromium (headless here), its DevTools on ``cdp``."""
    # Test-only flags: headless, root, a fake mic, loopback only. The kiosk adds its own.
    extra = [a for a in chromium_args(mic_wav=mic_wav) if not a.startswith("--disable-features")]
    extra += ["--disable-features=WebRtcHideLocalIpsWithMdns", f"--remote-debugging-port={cdp}"]
    args = ["kiosk", "--demo", *extra_args, "--host", "127.0.0.1", "--port", str(port), "--http-port", "0"]
    args += ["--data-dir", str(tmp_path), "--browser", str(CHROMIUM), *(f"--browser-arg={a}" for a in extra)]
    env = {**os.environ, "DISPLAY": ":99", "OPENAI_API_KEY": ""}
    return subprocess.Popen([sys.executable, "-m", "voicekiosk", *args], env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT)  # fmt: skip


def _browser_pattern(cdp: int) -> str:
    """Chromium's processes (not voicekiosk's, whose arguments mention the same port)."""
    return rf"^\S*chrom\S* .*--remote-debugging-port={cdp}"


def _browser_pids(cdp: int) -> set[int]:
    found = subprocess.run(["pgrep", "-f", _browser_pattern(cdp)], capture_output=True, text=True)
    assert found.returncode in (0, 1), f"pgrep failed ({found.returncode})"
    return {int(pid) for pid in found.stdout.split()}


def _browser_running(cdp: int) -> bool:
    return bool(_browser_pids(cdp))


async def _kiosk_page(playwright, cdp: int, timeout: float = 20.0):
    """The kiosk's page, once its browser answers on the DevTools port and shows it."""

    async def page():
        try:
            browser = await playwright.chromium.connect_over_cdp(f"http://127.0.0.1:{cdp}", timeout=2000)
        except Exception:
            return None  # not (yet, or again) listening
        pages = [p for c in browser.contexts for p in c.pages if p.url.startswith("https://")]
        return pages[0] if pages else None

    return await wait_for(page, timeout=timeout, interval=0.2, what="the kiosk browser showing the page")


async def _state_in(page, *states: str) -> bool:
    try:
        return await state(page) in states
    except Exception:
        return False
