"""A server that runs for days follows its machine's addresses: a new one gets a certificate."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from tests.helpers import in_own_namespace, last_json

SCRIPT = textwrap.dedent(
    """
    import asyncio, io, json, ssl, sys
    from pathlib import Path
    from rich.console import Console
    from tests.helpers import LAN, add_lan, loopback_up
    from voicekiosk.server import Server
    from voicekiosk.settings import Settings

    async def handshake(host, cafile):
        context = ssl.create_default_context(cafile=cafile)  # only our CA
        reader, writer = await asyncio.open_connection(host, 18443, ssl=context)
        writer.close()
        await writer.wait_closed()

    async def main(data):
        settings = Settings(data_dir=data, api_key=None, host="0.0.0.0", port=18443, http_port=0)
        reissued = asyncio.Queue()
        out = io.StringIO()
        server = Server(settings, Console(file=out), follow_every=0.2)
        server.on_reissue.append(reissued.put)
        await asyncio.wait_for(server.startup(), 20)
        cafile = str(data / "ca.pem")
        await handshake("127.0.0.1", cafile)
        add_lan()
        files = await asyncio.wait_for(reissued.get(), 5)
        await handshake(LAN, cafile)  # the running server now has a certificate for it
        await asyncio.wait_for(server.shutdown(), 20)
        count = 1 + reissued.qsize()
        banner_again = out.getvalue().count(f"https://{LAN}:18443/")
        print(json.dumps({"reissued": count, "spki": files.spki == server.files.spki, "banner_again": banner_again}))

    loopback_up()
    asyncio.run(main(Path(sys.argv[1])))
    """
)


@pytest.mark.slow
def test_a_new_address_gets_a_certificate_without_a_restart(tmp_path: Path):
    seen = last_json(in_own_namespace("-c", SCRIPT, str(tmp_path), timeout=90))
    assert seen["reissued"] == 1 and seen["spki"]
    assert seen["banner_again"] >= 1  # the terminal shows the new URL (and its QR codes)
