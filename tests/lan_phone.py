"""A "phone" on the LAN: run inside a network namespace of its own (``unshare --net``).

It gives the namespace a documentation address (192.0.2.10 on a veth pair), serves voicekiosk
and its demo agent there, and has Chromium do what a phone does: open the QR code's talk link,
get let in, tap Start, talk. Prints what it saw as JSON. Used by tests/test_access.py.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from pathlib import Path

from aiohttp import web

from tests.browser import CHROMIUM, PROBE, audio_energy, chromium_args, ice_addresses, wait_for, wait_state
from voicekiosk.fake import FakeOpenAI
from voicekiosk.fake.agent import AgentAnswerer
from voicekiosk.settings import Settings
from voicekiosk.tls.context import prepare, server_context
from voicekiosk.web.app import create_app

LAN = "192.0.2.10"


def make_lan() -> None:
    for command in (
        "ip link set lo up",
        "ip link add vk0 type veth peer name vk1",
        f"ip addr add {LAN}/24 dev vk0",
        "ip link set vk0 up",
        "ip link set vk1 up",
    ):
        subprocess.run(command.split(), check=True)


async def serve(app: web.Application, host: str, port: int, tls: object = None) -> web.AppRunner:
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, host, port, ssl_context=tls).start()  # type: ignore[arg-type]
    return runner


async def main(data_dir: Path, mic: Path) -> dict[str, object]:
    from playwright.async_api import async_playwright

    # The demo agent offers the host's addresses, as `serve --demo` does for phones.
    fake = FakeOpenAI(answerer=AgentAnswerer(loopback_only=False))
    fake_runner = await serve(fake.app(), "127.0.0.1", 18700)
    settings = Settings(
        data_dir=data_dir, host="0.0.0.0", port=18443, api_key=fake.api_key,
        openai_base_url="http://127.0.0.1:18700/v1", rate=100,
    )  # fmt: skip
    files = prepare(settings)
    tls = server_context(files)
    app_runner = await serve(create_app(settings), "0.0.0.0", settings.port, tls)
    token = (data_dir / "access-token").read_text().strip()
    spki = files.spki
    seen: dict[str, object] = {}
    try:
        async with async_playwright() as playwright:
            args = chromium_args(mic_wav=mic, spki=spki, exclude=[LAN])
            browser = await playwright.chromium.launch(executable_path=str(CHROMIUM), headless=False, args=args)
            page = await browser.new_page()
            await page.add_init_script(PROBE)
            await page.goto(f"https://{LAN}:{settings.port}/?token={token}")  # the QR code's link
            seen["url_after_redirect"] = page.url
            seen["cookie"] = [c["name"] for c in await page.context.cookies()]
            await wait_for(lambda: page.evaluate("Boolean(window.voicekiosk)"), what="the page code")
            await page.click("#start")  # a phone needs a tap
            seen["state"] = await wait_state(page, "listening", "user-speaking", "thinking", "agent-speaking")
            await wait_for(lambda: _louder(page), timeout=20, what="the agent's voice")
            seen["ice"] = sorted(await ice_addresses(page))
            seen["secure"] = await page.evaluate("window.isSecureContext")
            await browser.close()
    finally:
        await app_runner.cleanup()
        await fake_runner.cleanup()
    return seen


async def _louder(page: object) -> bool:
    return await audio_energy(page) > 0.01


if __name__ == "__main__":
    make_lan()
    print(json.dumps(asyncio.run(main(Path(sys.argv[1]), Path(sys.argv[2])))))
