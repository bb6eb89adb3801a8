"""``python -m voicekiosk.fake``: run the fake OpenAI on loopback (for benchmarks and hacking).

Point voicekiosk at it with ``--openai-base-url http://127.0.0.1:PORT/v1`` and
``OPENAI_API_KEY`` set to the key it prints.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import signal

from aiohttp import web

from voicekiosk.fake.answerers import CannedAnswerer
from voicekiosk.fake.server import FakeOpenAI


async def main(port: int, agent: bool, latency_ms: float) -> None:
    if agent:
        from voicekiosk.fake.agent import AgentAnswerer
        from voicekiosk.fake.live_agent import LiveAnswerer

        answerer, live = AgentAnswerer(loopback_only=True), LiveAnswerer(loopback_only=True)
        fake = FakeOpenAI(answerer=answerer, live=live, latency=latency_ms / 1000)
    else:
        fake = FakeOpenAI(answerer=CannedAnswerer(), latency=latency_ms / 1000)
    runner = web.AppRunner(fake.app(), access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", port)
    await site.start()
    bound = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    print(f"fake OpenAI on http://127.0.0.1:{bound}/v1 key {fake.api_key}", flush=True)
    stop = asyncio.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError):
            asyncio.get_running_loop().add_signal_handler(sig, stop.set)
    await stop.wait()
    await runner.cleanup()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--agent", action="store_true", help="answer with the talking aiortc peers (Realtime and Live)")
    parser.add_argument("--latency-ms", type=float, default=0.0)
    args = parser.parse_args()
    asyncio.run(main(args.port, args.agent, args.latency_ms))
