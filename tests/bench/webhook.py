"""``python -m tests.bench.webhook --port N``: a venue webhook that answers at once, in a process of
its own (so the tool round trip bench times our server, not this)."""

from __future__ import annotations

import argparse

from aiohttp import web


async def ping(request: web.Request) -> web.Response:
    await request.read()
    return web.json_response({"ok": True})


def main(port: int) -> None:
    app = web.Application()
    app.router.add_post("/ping", ping)
    web.run_app(app, host="127.0.0.1", port=port, print=lambda _: print(f"webhook on {port}", flush=True),
                access_log=None)  # fmt: skip


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, required=True)
    main(parser.parse_args().port)
