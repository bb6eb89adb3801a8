"""When this server's certificates expire: the local CA devices trust, and the certificate it serves.

Read from the files each time (parsed again only when a file changed): the server certificate is
reissued while the server runs (new addresses), and a CA renewed by hand is seen without a restart.
Only certificates are read here, never a key.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

from cryptography import x509

from voicekiosk import datadir
from voicekiosk.settings import Settings
from voicekiosk.tls.profile import CaInfo
from voicekiosk.tls.store import CertStore


class Certificates:
    """The expiry dates of the certificates a server uses (none without TLS)."""

    def __init__(self, settings: Settings, ca: CaInfo | None) -> None:
        self.files: dict[str, Path] = {}
        if ca is not None:
            self.files["ca"] = ca.path
        if settings.tls:
            self.files["server"] = settings.cert or CertStore(settings.data_dir).cert_path
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
            not_after: datetime | None = x509.load_pem_x509_certificate(path.read_bytes()).not_valid_after_utc
        except (OSError, ValueError):
            not_after = None
        self._seen[path] = (stamp, not_after)
        return not_after
