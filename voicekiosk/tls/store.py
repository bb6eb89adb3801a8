"""The local CA, kept in the data directory with the server certificate it signs.

Phones only give a web page the microphone over HTTPS, so voicekiosk makes its own CA on first
use (``ca.pem``, ``ca-key.pem``), constrained to this machine's names and local networks
(``constraints.py``); ``leaf.py`` issues the server certificate (``server.pem``,
``server-key.pem``, ``server.json``) from it.
"""

from __future__ import annotations

import datetime
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import NameOID

from voicekiosk import datadir, net
from voicekiosk.errors import StartupError
from voicekiosk.tls import CA_CERT, SERVER_CERT, constraints
from voicekiosk.tls.certificates import (
    canonical_identity,
    is_ca,
    load_pair,
    new_ca,
    san_names,
    sha256_fingerprint,
    spki_sha256_b64,
    utcnow,
)
from voicekiosk.tls.profile import CaInfo

ROTATE_HINT = "run `voicekiosk cert rotate` to make a new CA (devices must then trust the new one)"

Clock = Callable[[], datetime.datetime]


@dataclass(frozen=True)
class Authority:
    """The CA's certificate and the key it signs with."""

    cert: x509.Certificate
    key: ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey


@dataclass(frozen=True)
class CertInfo:
    """What ``voicekiosk cert`` shows; the leaf fields are None until one has been issued."""

    data_dir: Path
    ca_path: Path
    ca_key_path: Path
    ca_subject: str
    ca_sha256: str
    ca_not_after: datetime.datetime
    ca_vouches_for: str  # what its name constraints permit, for people
    cert_path: Path
    key_path: Path
    leaf_sha256: str | None
    spki_sha256: str | None
    names: tuple[str, ...]
    leaf_not_after: datetime.datetime | None


class CertStore:
    """The CA and server certificate kept in one data directory.

    Args:
      data_dir: Where the files live; created with mode 0700 if missing.
      clock: The current time, timezone-aware UTC (tests move it).
    """

    def __init__(self, data_dir: Path, *, clock: Clock = utcnow) -> None:
        self.data_dir = Path(data_dir)
        self.now = clock
        self.ca_path = self.data_dir / CA_CERT
        self.ca_key_path = self.data_dir / "ca-key.pem"
        self.cert_path = self.data_dir / SERVER_CERT
        self.key_path = self.data_dir / "server-key.pem"
        self.meta_path = self.data_dir / "server.json"
        self._ca: Authority | None = None

    # -- the CA ------------------------------------------------------------------------------

    def ca(self, permit: Iterable[str] = ()) -> Authority:
        """The CA, loaded from the data directory, or created there on first use.

        A new CA may vouch for the local names and networks, this machine's names and
        ``permit`` (``--san``, ``--host``), and nothing else; an existing one is used as it is.

        Raises:
          StartupError: the directory cannot be used, or ``ca.pem`` exists without a usable
            matching key (it is never replaced silently).
        """
        if self._ca is None:
            datadir.ensure_dir(self.data_dir)
            with datadir.locked(self.data_dir):
                if not self.ca_path.exists() and not self.ca_key_path.exists():
                    names = [canonical_identity(text) for text in [*net.host_names(), *permit]]
                    cert_pem, key_pem = new_ca(constraints.name_constraints(n for n in names if n))
                    # Key first: a crash in between leaves a key without a cert, never the reverse.
                    datadir.write_atomic(self.ca_key_path, key_pem, 0o600)
                    datadir.write_atomic(self.ca_path, cert_pem, 0o644)
                self._ca = self._load_ca()
        return self._ca

    def _load_ca(self) -> Authority:
        if not self.ca_path.exists():
            raise StartupError(f"{self.ca_key_path} exists but {self.ca_path} is missing: restore it, or {ROTATE_HINT}")
        if not self.ca_key_path.exists():
            raise StartupError(
                f"{self.ca_path} exists but its key {self.ca_key_path} is missing: restore the key, or {ROTATE_HINT}"
            )
        cert, key = load_pair(
            self.ca_path,
            self.ca_key_path,
            bad_cert=f"{self.ca_path} is not a PEM certificate: {ROTATE_HINT}",
            bad_key=f"{self.ca_key_path} is not an unencrypted PEM private key: {ROTATE_HINT}",
            mismatch=f"{self.ca_key_path} does not belong to {self.ca_path}: {ROTATE_HINT}",
        )
        if not is_ca(cert):
            raise StartupError(f"{self.ca_path} is not a CA certificate: {ROTATE_HINT}")
        if cert.not_valid_after_utc <= self.now():
            raise StartupError(
                f"the CA in {self.ca_path} expired on {cert.not_valid_after_utc:%Y-%m-%d}: {ROTATE_HINT}"
            )
        if not isinstance(key, ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey):  # what CAs are made with
            raise StartupError(f"{self.ca_key_path} is not a key that can sign certificates: {ROTATE_HINT}")
        return Authority(cert, key)

    def ca_certificate(self) -> x509.Certificate:
        return self.ca().cert

    def ca_pem(self) -> bytes:
        """The CA certificate, PEM (what devices install)."""
        return self.ca_certificate().public_bytes(serialization.Encoding.PEM)

    def ca_der(self) -> bytes:
        """The CA certificate, DER (``.cer``/``.crt`` for Android and Windows)."""
        return self.ca_certificate().public_bytes(serialization.Encoding.DER)

    def ca_sha256(self) -> str:
        """The CA certificate's SHA-256 fingerprint, colon-separated hex."""
        return self.ca_certificate().fingerprint(hashes.SHA256()).hex(":").upper()

    def export_ca(self, dest_dir: Path) -> tuple[Path, Path]:
        """Copy the CA certificate (never its key) to ``dest_dir`` as PEM and DER.

        Returns:
          (``voicekiosk-ca.pem``, ``voicekiosk-ca.cer``) paths.

        Raises:
          StartupError: the CA cannot be loaded or the files cannot be written.
        """
        pem, der = self.ca_pem(), self.ca_der()
        try:
            dest_dir.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise StartupError(f"cannot create {dest_dir}: {exc.strerror or exc}") from None
        pem_path, der_path = dest_dir / "voicekiosk-ca.pem", dest_dir / "voicekiosk-ca.cer"
        datadir.write_atomic(pem_path, pem, 0o644)
        datadir.write_atomic(der_path, der, 0o644)
        return pem_path, der_path

    def ca_info(self) -> CaInfo:
        """The CA as devices see it: path, common name, subject and fingerprint."""
        subject = self.ca_certificate().subject
        names = subject.get_attributes_for_oid(NameOID.COMMON_NAME)
        name = str(names[0].value) if names else "voicekiosk local CA"
        constrained = constraints.permitted(self.ca_certificate()) is not None
        return CaInfo(self.ca_path, name, subject.rfc4514_string(), self.ca_sha256(), constrained)

    def rotate(self, permit: Iterable[str] = ()) -> Path | None:
        """Retire the CA and server certificate and make a new CA (which may vouch for ``permit`` too).

        The old certificates move to ``retired-<UTC time>/``; the old private keys are deleted,
        since a retired CA key can only do harm. The server certificate is reissued on next use.

        Returns:
          The directory the old certificates went to, or None if there was nothing to retire.

        Raises:
          StartupError: the files cannot be moved or written.
        """
        datadir.ensure_dir(self.data_dir)
        retired: Path | None = None
        with datadir.locked(self.data_dir):
            old = [p for p in (self.ca_path, self.cert_path, self.meta_path) if p.exists()]
            try:
                if old:
                    retired = self.data_dir / f"retired-{self.now():%Y%m%dT%H%M%S%fZ}"
                    retired.mkdir(mode=0o700)
                    for path in old:
                        path.replace(retired / path.name)
                for key in (self.ca_key_path, self.key_path):
                    key.unlink(missing_ok=True)
            except OSError as exc:
                raise StartupError(f"cannot retire the CA in {self.data_dir}: {exc.strerror or exc}") from None
            self._ca = None
        self.ca(permit)
        return retired

    def describe(self) -> CertInfo:
        """Paths, fingerprints, names and expiry dates (creates the CA if there is none yet).

        Raises:
          StartupError: the CA cannot be loaded or created.
        """
        ca = self.ca_certificate()
        leaf_sha256 = spki = leaf_not_after = None
        names: tuple[str, ...] = ()
        try:
            cert_pem = self.cert_path.read_bytes()
            cert = x509.load_pem_x509_certificate(cert_pem)
        except (OSError, ValueError):
            pass
        else:
            leaf_sha256, spki = sha256_fingerprint(cert_pem), spki_sha256_b64(cert_pem)
            leaf_not_after, names = cert.not_valid_after_utc, san_names(cert)
        return CertInfo(
            data_dir=self.data_dir,
            ca_path=self.ca_path,
            ca_key_path=self.ca_key_path,
            ca_subject=ca.subject.rfc4514_string(),
            ca_sha256=self.ca_sha256(),
            ca_not_after=ca.not_valid_after_utc,
            ca_vouches_for=constraints.describe(ca),
            cert_path=self.cert_path,
            key_path=self.key_path,
            leaf_sha256=leaf_sha256,
            spki_sha256=spki,
            names=names,
            leaf_not_after=leaf_not_after,
        )
