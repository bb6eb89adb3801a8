"""Kiosk mode: Chrome/Chromium full screen on this machine's display, kept alive for days.

The browser trusts only our server certificate's key (``--ignore-certificate-errors-spki-list``,
never all certificates), gets the microphone without a prompt, starts talking on its own
(``?autostart``) with the page's kiosk behaviours (``&kiosk``), and is restarted, with back-off,
whenever it exits, or when its page hangs: the page beats over ``/api/events`` from its main
thread (``static/reporter.js``), and a page silent too long is treated as a crash. ``--window``
shows it in an app window instead, for a try on a desktop.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path

from rich.console import Console

from voicekiosk.browsers import find_browser
from voicekiosk.errors import StartupError
from voicekiosk.server import Server
from voicekiosk.settings import Settings
from voicekiosk.tls.context import TlsFiles
from voicekiosk.web.appkeys import EVENTS

log = logging.getLogger("voicekiosk.kiosk")

STABLE_AFTER = 60.0  # seconds a browser must live before a crash counts as a fresh one
MAX_DELAY = 30.0
SILENT_AFTER = 30.0  # seconds the page may go unheard (it beats every 10 s) before it counts as hung
FIRST_WORD_WITHIN = 90.0  # seconds after the browser starts for its page to be heard at all
# The page starts talking on its own, and behaves as a kiosk (no selection, zoom or context menu).
KIOSK_PAGE = "/?autostart&kiosk"


def check_display() -> None:
    """Fail early, with the fix, when there is no screen to show the kiosk on."""
    if sys.platform.startswith("linux") and not (os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")):
        raise StartupError(
            "No display: run `voicekiosk kiosk` from the desktop session (or set DISPLAY=:0). "
            "`voicekiosk serve` needs no display."
        )


def kiosk_command(
    browser: str, url: str, profile: Path, spki: str | None, extra: Sequence[str] = (), *, window: bool = False
) -> list[str]:
    """The browser's command line for an unattended full-screen kiosk (``window``: an app window
    instead, without tabs or address bar, for a try on a desktop)."""
    args = [
        browser,
        *(["--window-size=1280,800"] if window else ["--kiosk"]),
        f"--user-data-dir={profile}",
        "--no-first-run",
        "--no-default-browser-check",
        "--noerrdialogs",
        "--disable-infobars",
        "--disable-session-crashed-bubble",
        "--disable-features=Translate,TranslateUI",
        "--autoplay-policy=no-user-gesture-required",
        # Grants the microphone (and only media) without a prompt nobody is there to answer.
        "--use-fake-ui-for-media-stream",
        "--overscroll-history-navigation=0",
        "--disable-pinch",
        "--password-store=basic",
        "--check-for-update-interval=31536000",
    ]
    if spki:
        args.append(f"--ignore-certificate-errors-spki-list={spki}")
    return [*args, *extra, f"--app={url}" if window else url]


def browser_environment() -> dict[str, str]:
    """Our environment minus the secrets: the browser and its renderers have no use for them."""
    return {k: v for k, v in os.environ.items() if k != "OPENAI_API_KEY" and not k.startswith("VOICEKIOSK_")}


class BrowserSupervisor:
    """Runs the browser until told to stop; restarts it, with back-off, whenever it exits or its
    page hangs.

    Args:
      command: the browser's command line.
      stable_after: seconds a browser must live before a crash counts as a fresh one (back-off
        starts again at 1 s).
      heard: when the page last spoke (monotonic; None: never); None: the page is not watched.
      silent_after: seconds the page may go unheard, once it has spoken, before it counts as hung.
      first_word_within: seconds after the browser starts within which its page must speak.
    """

    def __init__(
        self,
        command: Sequence[str],
        *,
        stable_after: float = STABLE_AFTER,
        heard: Callable[[], float | None] | None = None,
        silent_after: float = SILENT_AFTER,
        first_word_within: float = FIRST_WORD_WITHIN,
    ) -> None:
        self.command = list(command)
        self.stable_after = stable_after
        self.heard = heard
        self.silent_after = silent_after
        self.first_word_within = first_word_within
        self.starts = 0
        self.hangs = 0  # browsers ended because their page went silent
        self.process: asyncio.subprocess.Process | None = None

    async def run(self, stop: asyncio.Event) -> None:
        delay = 1.0
        while not stop.is_set():
            started = time.monotonic()
            self.starts += 1
            try:
                self.process = await asyncio.create_subprocess_exec(
                    *self.command,
                    env=browser_environment(),
                    stdin=asyncio.subprocess.DEVNULL,
                    stdout=asyncio.subprocess.DEVNULL,
                    stderr=asyncio.subprocess.DEVNULL,
                    start_new_session=True,  # its helpers die with it when we stop the group
                )
            except OSError as exc:
                log.error("cannot start the browser: %s", exc)
            else:
                log.info("browser started (pid %d)", self.process.pid)
                code = await self._wait(stop, started)
                if code is None:
                    return
                log.warning("browser exited with code %s", code)
            if time.monotonic() - started > self.stable_after:
                delay = 1.0
            log.info("restarting the browser in %.0f s", delay)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), delay)
            delay = min(MAX_DELAY, delay * 2)

    async def _wait(self, stop: asyncio.Event, started: float) -> int | None:
        """The browser's exit code (ended here if its page hung), or None once it has been stopped
        because ``stop`` was set."""
        assert self.process is not None
        exited = asyncio.ensure_future(self.process.wait())
        stopping = asyncio.ensure_future(stop.wait())
        hung = asyncio.ensure_future(self._silence(self.heard, started)) if self.heard else None
        await asyncio.wait({exited, stopping, *([hung] if hung else [])}, return_when=asyncio.FIRST_COMPLETED)
        stopping.cancel()
        if hung:
            hung.cancel()
        if exited.done():
            return exited.result()
        await self.terminate()
        if stop.is_set():
            return None
        self.hangs += 1
        return await exited

    async def _silence(self, heard: Callable[[], float | None], started: float) -> None:
        """Return once the page has been silent too long: not heard within ``first_word_within``
        of the browser's start, or not for ``silent_after`` since it last spoke."""
        while True:
            last = heard()
            if last is not None and last >= started:
                deadline, since = last + self.silent_after, f"for {self.silent_after:.0f} s"
            else:
                deadline, since = started + self.first_word_within, "since the browser started"
            if time.monotonic() >= deadline:
                log.warning("the page has not been heard from %s: it hangs", since)
                return
            # Never longer than the silence allowed: a first word moves the deadline nearer.
            await asyncio.sleep(min(deadline - time.monotonic(), self.silent_after))

    async def restart(self, command: Sequence[str]) -> None:
        """Run ``command`` from now on: the current browser is ended and ``run`` starts it."""
        self.command = list(command)
        await self.terminate()

    async def terminate(self) -> None:
        process = self.process
        if process is None or process.returncode is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGTERM)
        try:
            await asyncio.wait_for(process.wait(), 5)
        except TimeoutError:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            await process.wait()


async def run_kiosk(
    settings: Settings,
    console: Console,
    *,
    browser_args: Sequence[str] = (),
    window: bool = False,
    silent_after: float = SILENT_AFTER,
) -> None:
    """Serve, then show the page full screen (``window``: in a window) and keep the browser alive,
    and its page answering, until stopped.

    Args:
      silent_after: seconds the page may go unheard before its browser is restarted.

    Raises:
      StartupError: no browser, no display, or the server cannot start.
    """
    browser = find_browser(settings.browser)
    check_display()
    url = settings.page_url("localhost" if settings.binds_all else settings.host, KIOSK_PAGE)
    profile = settings.data_dir / "kiosk-profile"

    def command(files: TlsFiles | None) -> list[str]:
        # The browser trusts this certificate's key and no other.
        return kiosk_command(browser, url, profile, files.spki if files else None, browser_args, window=window)

    server = Server(settings, console)
    await server.startup()
    assert server.app is not None
    supervisor = BrowserSupervisor(
        command(server.files),
        heard=server.app[EVENTS].kiosk_heard,
        silent_after=silent_after,
        first_word_within=max(FIRST_WORD_WITHIN, silent_after),
    )

    async def reissued(files: TlsFiles) -> None:
        # The browser was told to trust the old certificate's key: start it anew with the new one.
        await supervisor.restart(command(files))

    server.on_reissue.append(reissued)
    log.info("kiosk: %s on %s", Path(browser).name, url)
    try:
        await supervisor.run(server.should_exit)
    finally:
        server.should_exit.set()
        await supervisor.terminate()
        await server.shutdown()
