"""A "phone" on the LAN: run inside a network namespace of its own (``unshare --net``).

It gives the namespace a LAN address (``tests.helpers.LAN`` on a veth pair), serves voicekiosk
with its demo agent there (``Server``, as ``voicekiosk serve --demo`` does), and has Chromium do
what a phone does: open the QR code's talk link, get let in, tap Start, talk. Prints what it saw
as JSON. Used by tests/test_access.py.
"""

from __future__ import annotations

import asyncio
import io
import json
import sys
from pathlib import Path

from rich.console import Console

from tests.browser import CHROMIUM, PROBE, audio_energy, chromium_args, ice_addresses, wait_state
from tests.helpers import LAN, add_lan, loopback_up, wait_for
from voicekiosk.server import Server
from voicekiosk.settings import Settings


async def main(data_dir: Path, mic: Path) -> dict[str, object]:
    from playwright.async_api import async_playwright

    settings = Settings(data_dir=data_dir, host="0.0.0.0", port=18443, http_port=0, demo=True, rate=100)
    server = Server(settings, Console(file=io.StringIO()))
    await asyncio.wait_for(server.startup(), 30)
    assert server.files is not None
    token = (data_dir / "access-token").read_text().strip()
    seen: dict[str, object] = {}
    try:
        async with async_playwright() as playwright:
            args = chromium_args(mic_wav=mic, spki=server.files.spki, exclude=[LAN])
            browser = await playwright.chromium.launch(executable_path=str(CHROMIUM), headless=False, args=args)
            try:
                page = await browser.new_page()
                troubles: list[str] = []  # said in the failure, if the page's code never runs
                page.on("console", lambda m: m.type == "error" and troubles.append(f"console: {m.text}"))
                page.on("pageerror", lambda e: troubles.append(f"page error: {e}"))
                page.on("requestfailed", lambda r: troubles.append(f"request failed: {r.url} {r.failure}"))
                await page.add_init_script(PROBE)
                await page.goto(f"https://{LAN}:{settings.port}/?token={token}")  # the QR code's link
                seen["url_after_redirect"] = page.url
                seen["cookie"] = [c["name"] for c in await page.context.cookies()]
                # A first page in a fresh namespace, on a loaded 2-core machine, can take a while.
                try:
                    await wait_for(lambda: page.evaluate("Boolean(window.voicekiosk)"), timeout=30, what="the code")
                except AssertionError as exc:
                    raise AssertionError(f"{exc} at {page.url}; the page's troubles: {troubles[-8:]}") from None
                await page.click("#attract")  # a phone needs a tap (anywhere on the attract screen)
                seen["state"] = await wait_state(page, "listening", "user-speaking", "thinking", "agent-speaking")
                await wait_for(lambda: _louder(page), timeout=20, what="the agent's voice")
                seen["ice"] = sorted(await ice_addresses(page))
                seen["secure"] = await page.evaluate("window.isSecureContext")
            finally:
                await browser.close()
    finally:
        await asyncio.wait_for(server.shutdown(), 30)
    return seen


async def _louder(page: object) -> bool:
    return await audio_energy(page) > 0.01


if __name__ == "__main__":
    loopback_up()
    add_lan()
    print(json.dumps(asyncio.run(main(Path(sys.argv[1]), Path(sys.argv[2])))))
