"""When this server's certificates expire: the local CA devices trust, and the certificate it serves.

Read from the files each time (parsed again only when a file changed): the server certificate is
reissued while the server runs (new addresses), and a CA renewed by hand is seen without a restart.
Only certificates are read here, never a key.
"""

from __future__ import annotations

import ssl
from datetime import UTC, datetime
from pathlib import Path

from voicekiosk import datadir
from voicekiosk.settings import Settings
from voicekiosk.tls import SERVER_CERT
from voicekiosk.tls.profile import CaInfo


class Certificates:
    """The expiry dates of the certificates a server uses (none without TLS)."""

    def __init__(self, settings: Settings, ca: CaInfo | None) -> None:
        self.files: dict[str, Path] = {}
        if ca is not None:
            self.files["ca"] = ca.path
        if settings.tls:
            self.files["server"] = settings.cert or settings.data_dir / SERVER_CERT
        self._seen: dict[Path, tuple[tuple[int, int, int] | None, datetime | None]] = {}

    def expiry(self) -> dict[str, datetime | None]:
        """``{"ca": ..., "server": ...}``: each one's ``notAfter`` (UTC); None if it cannot be read."""
        return {name: self._not_after(path) for name, path in self.files.items()}

    def _not_after(self, path: Path) -> datetime | None:
        stamp = datadir.stamp(path)
        seen = self._seen.get(path)
        if seen is not None and seen[0] == stamp:
            return seen[1]
        try:
            not_after = not_valid_after(path.read_bytes())
        except OSError:
            not_after = None
        self._seen[path] = (stamp, not_after)
        return not_after


def not_valid_after(pem: bytes) -> datetime | None:
    """A PEM certificate's ``notAfter`` (UTC), read with the standard library: ``cryptography``
    (about 9 MB) stays out of the running server (``tls/__init__.py``). None if it is not one."""
    try:
        [(_, certificate)] = _items(ssl.PEM_cert_to_DER_cert(pem.decode("ascii")))
        fields = _items(_items(certificate)[0][1])  # tbsCertificate's fields
        if fields[0][0] == 0xA0:  # [0] version, when present
            fields = fields[1:]
        tag, when = _items(fields[3][1])[1]  # serial, signature, issuer, validity: (notBefore, notAfter)
        layout = {0x17: "%y%m%d%H%M%SZ", 0x18: "%Y%m%d%H%M%SZ"}[tag]  # UTCTime, GeneralizedTime
        return datetime.strptime(when.decode("ascii"), layout).replace(tzinfo=UTC)
    except (ValueError, IndexError, KeyError, UnicodeError):
        return None


def _items(der: bytes) -> list[tuple[int, bytes]]:
    """The DER elements one after another in ``der``: (tag, contents)."""
    items, at = [], 0
    while at < len(der):
        tag, length = der[at], der[at + 1]
        at += 2
        if length & 0x80:
            size = length & 0x7F
            if not 0 < size <= 4:
                raise ValueError("a DER length this server never makes")
            length, at = int.from_bytes(der[at : at + size], "big"), at + size
        if at + length > len(der):
            raise ValueError("a truncated DER element")
        items.append((tag, der[at : at + length]))
        at += length
    return items
