"""A LAN address that appears and goes, in a network namespace of the test's own: the certificate follows."""

from __future__ import annotations

import socket
import textwrap
from pathlib import Path

import pytest

from tests.helpers import in_own_namespace

# -- a LAN address that appears, in a network namespace of the test's own ---------------------

NETNS_SCRIPT = textwrap.dedent(
    """
    import asyncio, ipaddress, pathlib, ssl, sys
    import trustme
    from cryptography import x509
    from voicekiosk import net
    from voicekiosk.tls.context import prepare, server_context
    from voicekiosk.tls.leaf import server_cert
    from voicekiosk.tls.store import CertStore
    from voicekiosk.settings import Settings
    from tests.helpers import LAN, add_lan, ip, loopback_up

    data = pathlib.Path(sys.argv[1])
    loopback_up()
    assert net.lan_addresses() == [], net.lan_addresses()
    before = server_cert(CertStore(data))
    assert LAN not in before.identities

    add_lan(ipv6="fd00::10/64")
    ip("addr", "add", "2001:db8::10/64", "dev", "vk0", "nodad")  # a global address: not the CA's to vouch for
    assert net.lan_addresses() == [LAN, "2001:db8::10", "fd00::10"], net.lan_addresses()

    ctx = server_context(prepare(Settings(data_dir=data)))
    after = server_cert(CertStore(data))
    assert not after.reissued and after.serial != before.serial, (before, after)
    ext = x509.load_pem_x509_certificate(after.cert_path.read_bytes()).extensions
    ips = ext.get_extension_for_class(x509.SubjectAlternativeName).value.get_values_for_type(x509.IPAddress)
    assert {ipaddress.ip_address(LAN), ipaddress.ip_address("fd00::10")} <= set(ips), ips
    assert ipaddress.ip_address("2001:db8::10") not in ips and after.left_out == ("2001:db8::10",), after

    async def fetch(host, cafile):
        client = ssl.create_default_context(cafile=cafile)
        reader, writer = await asyncio.open_connection(host, port, ssl=client, server_hostname=host)
        try:
            return await reader.read()
        finally:
            writer.close()

    async def answer(reader, writer):
        writer.write(b"ok")
        writer.close()

    async def main(host):
        global port
        server = await asyncio.start_server(answer, host, 0, ssl=ctx)
        port = server.sockets[0].getsockname()[1]
        try:
            assert await fetch(host, str(data / "ca.pem")) == b"ok"
            stranger = data.parent / "stranger.pem"
            trustme.CA().cert_pem.write_to_path(stranger)
            try:
                await fetch(host, str(stranger))
            except ssl.SSLCertVerificationError:
                pass
            else:
                raise AssertionError("a fresh CA verified our server")
        finally:
            server.close()
            await server.wait_closed()

    asyncio.run(main(LAN))
    asyncio.run(main("fd00::10"))

    ip("link", "set", "vk0", "down")
    assert LAN not in net.lan_addresses(), net.lan_addresses()
    gone = server_cert(CertStore(data))
    assert gone.reissued and LAN not in gone.identities
    print("netns ok")
    """
)


@pytest.mark.slow
def test_new_lan_address_is_covered_in_a_network_namespace(tmp_path: Path) -> None:
    proc = in_own_namespace("-W", "error", "-c", NETNS_SCRIPT, str(tmp_path / "data"), timeout=120)
    assert proc.stdout.strip() == "netns ok"
    # The namespace died with the process: nothing leaked into ours.
    assert "vk0" not in {name for _, name in socket.if_nameindex()}
