"""The server certificate: issued by the local CA for every name and address this machine
answers on, and reissued only when that set changes, the CA changes, or it nears expiry.
"""

from __future__ import annotations

import dataclasses
import datetime
import json
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization

from voicekiosk import datadir, net
from voicekiosk.errors import StartupError
from voicekiosk.settings import Settings
from voicekiosk.tls.certificates import (
    BACKDATE,
    canonical_identity,
    check_own_pair,
    issue_server_cert,
    public_der,
    spki_sha256_b64,
)
from voicekiosk.tls.constraints import single_label, vouches_for
from voicekiosk.tls.store import CertStore

# Apple platforms reject TLS server certificates valid for more than 825 days, even under a
# user-installed root (https://support.apple.com/en-us/103769); mkcert stays under it too.
LEAF_VALIDITY = datetime.timedelta(days=800)
RENEW_BEFORE = datetime.timedelta(days=30)


@dataclass(frozen=True)
class ServerCert:
    """The server certificate on disk and what it covers."""

    cert_path: Path
    key_path: Path
    identities: tuple[str, ...]
    serial: int
    not_after: datetime.datetime
    reissued: bool
    left_out: tuple[str, ...] = ()  # names and addresses the CA may not vouch for


def identities(extra: Iterable[str] = ()) -> tuple[str, ...]:
    """Every name the server certificate must cover: loopback, host names, LAN addresses, ``extra``.

    Raises:
      StartupError: an ``extra`` name is neither a valid host name nor an IP address.
    """
    found: list[str] = []
    for text in [*net.loopback_names(), *net.host_names(), *net.lan_addresses()]:
        # A host name that is no valid DNS name (``my_pc``) is left out rather than fatal.
        name = canonical_identity(text)
        if name and name not in found:
            found.append(name)
    for text in extra:
        name = canonical_identity(text)
        if name is None:
            raise StartupError(f"--san: {text!r} is not a host name or IP address")
        if name not in found:
            found.append(name)
    return tuple(found)


def server_cert(store: CertStore, extra: Iterable[str] = ()) -> ServerCert:
    """The server certificate for this machine's current names, issued only if needed.

    It is reissued when the identities differ from the recorded ones (an address came or
    went, a new ``--san``), the CA changed, or it expires within 30 days. Names and addresses
    the CA may not vouch for (a public address; a ``--san`` added after the CA was made) are
    left out, and listed in ``left_out``.

    Args:
      extra: Further names or addresses (``--san``).

    Raises:
      StartupError: the CA cannot be used, a name is invalid, or a file cannot be written.
    """
    extra = list(extra)
    every = identities(extra)
    ca = store.ca(permit=extra)
    wanted = tuple(name for name in every if vouches_for(ca.cert, name))
    # This machine's bare name ("kiosk") is one no constrained CA vouches for: not worth a warning.
    own = {canonical_identity(name) for name in net.host_names() if single_label(name)}
    left_out = tuple(name for name in every if name not in wanted and name not in own)
    with datadir.locked(store.data_dir):
        current = _current_leaf(store, wanted)
        if current is not None:
            return dataclasses.replace(current, left_out=left_out)
        now = store.now()
        not_after = min(now + LEAF_VALIDITY, ca.cert.not_valid_after_utc)
        cert_pem, key_pem = issue_server_cert(ca.cert, ca.key, wanted, now - BACKDATE, not_after)
        cert = x509.load_pem_x509_certificate(cert_pem)
        datadir.write_atomic(store.key_path, key_pem, 0o600)
        datadir.write_atomic(store.cert_path, cert_pem, 0o644)
        meta = {
            "identities": list(wanted),
            "serial": format(cert.serial_number, "x"),
            "not_after": cert.not_valid_after_utc.isoformat(),
            "ca_sha256": store.ca_sha256(),
        }
        datadir.write_atomic(store.meta_path, (json.dumps(meta, indent=2) + "\n").encode(), 0o644)
        return ServerCert(
            store.cert_path, store.key_path, wanted, cert.serial_number, cert.not_valid_after_utc, True, left_out
        )


def _current_leaf(store: CertStore, wanted: tuple[str, ...]) -> ServerCert | None:
    """The stored server certificate if it is still right for ``wanted``, else None."""
    try:
        meta = json.loads(store.meta_path.read_text(encoding="utf-8"))
        cert = x509.load_pem_x509_certificate(store.cert_path.read_bytes())
        key = serialization.load_pem_private_key(store.key_path.read_bytes(), password=None)
        recorded = tuple(meta["identities"])
        serial = int(meta["serial"], 16)
        ca_sha256 = meta["ca_sha256"]
    except (OSError, ValueError, TypeError, KeyError):
        return None
    if (
        set(recorded) != set(wanted)
        or ca_sha256 != store.ca_sha256()
        or cert.serial_number != serial
        or cert.not_valid_after_utc - store.now() <= RENEW_BEFORE
        or public_der(key.public_key()) != public_der(cert.public_key())
    ):
        return None
    try:
        cert.verify_directly_issued_by(store.ca_certificate())
    except (ValueError, TypeError, InvalidSignature):
        return None
    return ServerCert(store.cert_path, store.key_path, recorded, serial, cert.not_valid_after_utc, False)


def server_files(settings: Settings) -> dict[str, Any]:
    """Make or reuse, and check, the certificate the HTTPS server presents.

    With ``--cert``/``--key`` those files are checked; otherwise the data directory's CA issues
    (or reuses) a certificate for every name this machine answers on plus ``--san``.

    Returns:
      JSON-able facts for ``context.TlsFiles``: ``cert``, ``key``, ``spki`` and ``ca`` (the local
      CA's ``path``, ``name``, ``subject``, ``sha256``; None with ``--cert``).

    Raises:
      StartupError: the certificate or key cannot be read, do not match, or have expired; or
        the local CA cannot be used.
    """
    if settings.cert is not None and settings.key is not None:  # Settings has them both or neither
        check_own_pair(settings.cert, settings.key)
        cert_path, key_path, ca = settings.cert, settings.key, None
        left_out: tuple[str, ...] = ()
    else:
        store = CertStore(settings.data_dir)
        leaf = server_cert(store, extra_names(settings))
        cert_path, key_path, left_out = leaf.cert_path, leaf.key_path, leaf.left_out
        info = store.ca_info()
        ca = dataclasses.asdict(info) | {"path": str(info.path)}
    try:
        spki = spki_sha256_b64(cert_path.read_bytes())
    except (OSError, ValueError) as exc:
        raise StartupError(f"cannot read the certificate {cert_path}: {exc}") from None
    return {"cert": str(cert_path), "key": str(key_path), "spki": spki, "ca": ca, "left_out": list(left_out)}


def extra_names(settings: Settings) -> list[str]:
    """The names the settings add to this machine's own: ``--san``, and a specific ``--host``
    (a name clients use too; a wildcard bind address is not)."""
    extra = list(settings.san)
    if not settings.binds_all and canonical_identity(settings.host):
        extra.append(settings.host)
    return extra
