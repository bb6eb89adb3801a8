"""A real Chromium that trusts our CA as a root, put in its NSS database the way `voicekiosk trust`
does and with no pinning flag, verifies chains itself and enforces the CA's name constraints.

What a thief with ``ca-key.pem`` would sign for another site is refused. The control: the same
certificates, under a CA with the same name and key but no name constraints, load.
"""

from __future__ import annotations

import ipaddress
import json
import os
import re
import shutil
import ssl
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization

from tests.browser import chromium_args
from tests.certs import ipv6_loopback
from voicekiosk.tls import constraints, trust
from voicekiosk.tls.certificates import BACKDATE, issue_server_cert, utcnow
from voicekiosk.tls.leaf import LEAF_VALIDITY
from voicekiosk.tls.store import Authority, CertStore

pytestmark = [pytest.mark.browser, pytest.mark.usefixtures("no_lan")]

KIOSK = "localhost"  # served by the app itself, with the certificate it issues itself
ALLOWED = ["kiosk.home.arpa", "127.0.0.1"]  # inside the bounds (with ::1): a stolen key can still sign these
FOREIGN = ["bank.example", "accounts.google.com"]  # outside: must never load
# An address in no permitted range that loopback still reaches: 127.0.0.1 written as IPv6.
MAPPED = str(ipaddress.ip_address("::ffff:127.0.0.1"))  # "::ffff:7f00:1", as Chromium writes it
REFUSED = {"ERR_CERT_INVALID", "ERR_CERT_NAME_CONSTRAINT_VIOLATION"}
WHY = "Not permitted by name constraints"  # Chromium's verifier, in its net log


def require_certutil() -> None:
    """Skip (fail, in CI) without NSS's certutil, which `voicekiosk trust` runs."""
    if shutil.which("certutil") is None:
        problem = "certutil is missing (sudo apt-get install libnss3-tools)"
        if os.environ.get("CI"):
            pytest.fail(problem)
        pytest.skip(problem)


def is_ip(name: str) -> bool:
    try:
        ipaddress.ip_address(name)
    except ValueError:
        return False
    return True


def url(name: str, server: TestServer) -> str:
    """``server``'s page at ``name``."""
    assert server.port is not None
    return f"https://{f'[{name}]' if ':' in name else name}:{server.port}/"


def forge(ca: Authority, name: str, into: Path) -> ssl.SSLContext:
    """What a thief with the CA key would sign for ``name``, as a server context presenting it."""
    now = utcnow()
    cert_pem, key_pem = issue_server_cert(ca.cert, ca.key, [name], now - BACKDATE, now + LEAF_VALIDITY)
    cert, key = into / f"forged-{name.replace(':', '_')}.pem", into / f"forged-{name.replace(':', '_')}-key.pem"
    cert.write_bytes(cert_pem)
    key.write_bytes(key_pem)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    return context


def answering(text: str) -> web.Application:
    """A site whose every page says ``text``."""

    async def page(_: web.Request) -> web.Response:
        return web.Response(text=text)

    app = web.Application()
    app.router.add_get("/", page)
    return app


def without_constraints(ca: Authority) -> bytes:
    """Our CA certificate as it is (name, key, every other extension) but for its name constraints."""
    builder = (
        x509.CertificateBuilder()
        .subject_name(ca.cert.subject)
        .issuer_name(ca.cert.issuer)
        .public_key(ca.cert.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(ca.cert.not_valid_before_utc)
        .not_valid_after(ca.cert.not_valid_after_utc)
    )
    for extension in ca.cert.extensions:
        if not isinstance(extension.value, x509.NameConstraints):
            builder = builder.add_extension(extension.value, critical=extension.critical)
    twin = builder.sign(ca.key, hashes.SHA256())
    assert constraints.permitted(twin) is None and constraints.permitted(ca.cert) is not None
    return twin.public_bytes(serialization.Encoding.PEM)


def trusting_home(home: Path, ca_pem: Path) -> dict[str, str]:
    """A HOME whose NSS database trusts ``ca_pem`` for websites, put there by `voicekiosk trust`'s
    own steps (real certutil); returns the environment that makes Chromium use it."""
    results = trust.install_trust(trust.trust_commands(ca_pem, home=home, platform="linux"))
    assert [(r.step.store, r.status) for r in results] == [("Chrome/Chromium (NSS)", "done")], results
    assert (home / ".pki" / "nssdb" / "cert9.db").is_file()
    return {**os.environ, "HOME": str(home)}


async def outcome(browser: Any, address: str) -> str:
    """Open ``address`` in a fresh context: the HTTP status, or Chromium's error (``ERR_CERT_INVALID``)."""
    from playwright.async_api import Error

    context = await browser.new_context()
    try:
        page = await context.new_page()
        try:
            response = await page.goto(address, timeout=10_000)
        except Error as exc:
            found = re.search(r"net::(ERR_[A-Z_]+)", str(exc))
            return found.group(1) if found else str(exc)
        return str(response.status) if response else "no response"
    finally:
        await context.close()


def verifier_errors(net_log: Path) -> dict[str, str]:
    """Per host, the errors Chromium's certificate verifier logged for the paths it built."""
    log = json.loads(net_log.read_text(encoding="utf-8"))
    kinds = {number: name for name, number in log["constants"]["logEventTypes"].items()}
    hosts: dict[int, str] = {}
    errors: dict[str, str] = {}
    for event in log["events"]:
        kind, source, params = kinds[event["type"]], event["source"]["id"], event.get("params") or {}
        if kind == "CERT_VERIFY_PROC" and "host" in params:
            hosts[source] = params["host"]
        elif kind == "CERT_VERIFY_PROC_PATH_BUILT":
            host = hosts[source]
            errors[host] = errors.get(host, "") + params.get("errors", "")
    return errors


async def test_chromium_trusting_our_ca_refuses_what_a_stolen_key_signs_for_another_site(
    launch_chromium: Callable[..., Awaitable[Any]],
    serve_app: Callable[..., Awaitable[TestServer]],
    aiohttp_server: Callable[..., Awaitable[TestServer]],
    https_settings: Any,
    tmp_path: Path,
) -> None:
    require_certutil()
    kiosk = await serve_app(https=True)  # the CA and its certificate, made by prepare() in the data dir
    store = CertStore(https_settings.settings.data_dir)
    ca = store.ca()
    ipv6 = ipv6_loopback()  # both IPv6 addresses need it (the mapped one: Chromium uses an IPv6 socket)
    allowed, foreign = ALLOWED + (["::1"] if ipv6 else []), FOREIGN + ([MAPPED] if ipv6 else [])
    urls = {KIOSK: url(KIOSK, kiosk)}
    for name in allowed + foreign:
        listen = "::1" if name == "::1" else "127.0.0.1"
        server = await aiohttp_server(answering(f"forged {name}"), host=listen, ssl=forge(ca, name, tmp_path))
        urls[name] = url(name, server)
    args = chromium_args(
        resolve={name: "127.0.0.1" for name in urls if not is_ip(name)},
        exclude=[MAPPED],  # an IPv6 literal is excluded written bare, not in brackets
    )

    async def visit(ca_pem: Path, label: str) -> tuple[dict[str, str], dict[str, str]]:
        """Every URL in a Chromium whose one added root is ``ca_pem``: outcomes, and why certificates failed."""
        net_log = tmp_path / f"{label}-net-log.json"
        env = trusting_home(tmp_path / f"{label}-home", ca_pem)
        browser = await launch_chromium([*args, f"--log-net-log={net_log}"], env=env)
        seen = {name: await outcome(browser, address) for name, address in urls.items()}
        await browser.close()  # writes the net log out
        return seen, verifier_errors(net_log)

    seen, why = await visit(store.ca_path, "constrained")
    loaded = {name for name, result in seen.items() if result == "200"}
    refused = {name for name, result in seen.items() if result in REFUSED}
    assert (loaded, refused) == ({KIOSK, *allowed}, set(foreign)), seen
    for name in foreign:
        assert WHY in why[name], (name, why)
    assert not any(why[name] for name in loaded), why

    # The control: the same certificates, trusted through the same name and key without the constraints.
    twin = tmp_path / "unconstrained-ca.pem"
    twin.write_bytes(without_constraints(ca))
    seen, why = await visit(twin, "unconstrained")
    assert seen == dict.fromkeys(urls, "200"), seen
    assert not any(why.values()), why
