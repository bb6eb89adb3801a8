"""``voicekiosk token --rotate`` reaches a running server: old cookies and links out, new ones in."""

from __future__ import annotations

import io
import textwrap
from pathlib import Path

import pytest
from rich.console import Console

from tests.helpers import free_port, in_own_namespace, last_json, wait_for, within
from voicekiosk import datadir
from voicekiosk.server import Server
from voicekiosk.settings import Settings

SCRIPT = textwrap.dedent(
    """
    import asyncio, io, json, ssl, subprocess, sys
    from pathlib import Path
    import httpx
    from rich.console import Console
    from tests.helpers import LAN, add_lan, loopback_up, wait_for
    from voicekiosk.server import Server
    from voicekiosk.settings import Settings

    loopback_up()
    add_lan()

    async def main(data):
        settings = Settings(data_dir=data, api_key=None, host="0.0.0.0", port=18443, http_port=0)
        out = io.StringIO()
        server = Server(settings, Console(file=out, width=200), token_every=0.2)
        await asyncio.wait_for(server.startup(), 30)
        old = (data / "access-token").read_text().strip()
        seen = {"old_link_in_banner": f"?token={old}" in out.getvalue()}
        ctx = ssl.create_default_context(cafile=str(data / "ca.pem"))
        base = f"https://{LAN}:18443"
        try:
            async with httpx.AsyncClient(verify=ctx) as phone:
                seen["before"] = (await phone.get(base + "/?token=" + old)).status_code
                seen["cookie_before"] = (await phone.get(base + "/api/config")).status_code
                # The real command, in a process of its own, as an operator would run it.
                rotate = await asyncio.create_subprocess_exec(
                    sys.executable, "-m", "voicekiosk", "token", "--rotate", "--data-dir", str(data),
                    stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                )
                stdout, stderr = await asyncio.wait_for(rotate.communicate(), 30)
                new = stdout.decode().strip()
                seen["said"] = stderr.decode()
                await wait_for(lambda: f"?token={new}" in out.getvalue(), timeout=10, what="the new link in the banner")
                seen["old_cookie"] = (await phone.get(base + "/api/config")).status_code
                seen["old_link"] = (await phone.get(base + "/?token=" + old)).status_code
                seen["new_link"] = (await phone.get(base + "/?token=" + new)).status_code
                seen["new_cookie"] = (await phone.get(base + "/api/config")).status_code
        finally:
            await asyncio.wait_for(server.shutdown(), 30)
        print(json.dumps(seen))

    asyncio.run(main(Path(sys.argv[1])))
    """
)


@pytest.mark.slow
def test_rotating_the_token_applies_to_the_running_server(tmp_path: Path):
    seen = last_json(in_own_namespace("-c", SCRIPT, str(tmp_path / "data"), timeout=90))
    assert seen["old_link_in_banner"]
    assert seen["before"] == 302 and seen["cookie_before"] == 200
    assert "running voicekiosk server takes the new token" in seen["said"]
    assert seen["old_cookie"] == 401 and seen["old_link"] == 401
    assert seen["new_link"] == 302 and seen["new_cookie"] == 200


async def test_a_damaged_token_file_keeps_the_running_token(tmp_path: Path, caplog):
    data = tmp_path / "data"
    settings = Settings(data_dir=data, api_key=None, tls=False, host="127.0.0.1", port=free_port(), http_port=0)
    server = Server(settings, Console(file=io.StringIO()), token_every=0.05)
    await within(server.startup(), 20, "the server to start")
    try:
        old = server._token
        datadir.write_atomic(data / "access-token", b"short\n", 0o600)  # a bad restore, say
        await wait_for(lambda: "cannot be used (the old token still works)" in caplog.text, timeout=5, what="the error")
        assert server._token == old and "is damaged" in caplog.text
    finally:
        await within(server.shutdown(), 20, "the server to stop")
