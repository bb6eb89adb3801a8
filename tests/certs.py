"""For the TLS tests: a data dir with a CA, real TLS servers and clients on loopback, cert reading.

Loaded as a plugin by conftest (its fixtures), imported by the test modules (its functions).
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import ssl
import stat
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from cryptography import x509

from voicekiosk import net
from voicekiosk.settings import Settings
from voicekiosk.tls.certificates import san_names
from voicekiosk.tls.store import CertStore

SAN = "kiosk.example"


@pytest.fixture
def no_lan(monkeypatch: pytest.MonkeyPatch) -> None:
    """Outside the namespace test, the machine has no LAN addresses (never use real ones)."""
    monkeypatch.setattr(net, "lan_addresses", lambda: [])


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    return tmp_path / "data"


@pytest.fixture
def store(data_dir: Path) -> CertStore:
    return CertStore(data_dir)


@pytest.fixture
def tls_settings(data_dir: Path) -> Settings:
    return Settings(data_dir=data_dir, san=(SAN,), host="0.0.0.0")


def ipv6_loopback() -> bool:
    try:
        with socket.socket(socket.AF_INET6, socket.SOCK_STREAM) as sock:
            sock.bind(("::1", 0))
    except OSError:
        return False
    return True


@contextlib.asynccontextmanager
async def tls_server(ctx: ssl.SSLContext, host: str) -> AsyncIterator[int]:
    """A TLS server on ``host`` that answers ``ok`` and hangs up; yields its port."""

    async def answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(b"ok")
        with contextlib.suppress(ConnectionError, ssl.SSLError):
            await writer.drain()
            writer.close()
            await writer.wait_closed()

    server = await asyncio.start_server(answer, host, 0, ssl=ctx)
    try:
        yield server.sockets[0].getsockname()[1]
    finally:
        server.close()
        await server.wait_closed()


async def fetch(host: str, port: int, client: ssl.SSLContext, server_hostname: str) -> tuple[bytes, bytes]:
    """Connect, verify, read the answer; returns (answer, the server's certificate as PEM)."""
    reader, writer = await asyncio.open_connection(host, port, ssl=client, server_hostname=server_hostname)
    try:
        der = writer.get_extra_info("ssl_object").getpeercert(binary_form=True)
        return await reader.read(), ssl.DER_cert_to_PEM_cert(der).encode()
    finally:
        writer.close()
        with contextlib.suppress(ConnectionError, ssl.SSLError):
            await writer.wait_closed()


def trusting(ca_pem: Path) -> ssl.SSLContext:
    """A client context that trusts only ``ca_pem``."""
    return ssl.create_default_context(cafile=str(ca_pem))


def leaf_of(path: Path) -> x509.Certificate:
    return x509.load_pem_x509_certificate(path.read_bytes())


def sans(cert: x509.Certificate) -> set[str]:
    return set(san_names(cert))


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)
