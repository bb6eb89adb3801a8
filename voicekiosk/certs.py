"""The local CA and the server certificate it signs, kept in the data directory.

Phones only give a web page the microphone over HTTPS, so voicekiosk makes its own CA on first
use (``ca.pem``, ``ca-key.pem``) and issues a server certificate (``server.pem``,
``server-key.pem``, ``server.json``) for every name and LAN address this machine answers on.
Devices trust the CA once; the server certificate is reissued whenever the set of names changes
or it nears expiry, and the devices never notice.

trustme issues the server certificates; ``x509util.new_ca`` builds the CA they are issued from.
"""

from __future__ import annotations

import contextlib
import datetime
import json
import os
import ssl
import sys
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import trustme
from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.x509.oid import NameOID

from voicekiosk import net, tls, x509util
from voicekiosk.errors import StartupError
from voicekiosk.settings import Settings

# Re-exported (``as``): callers use these as ``certs.<name>``.
from voicekiosk.x509util import canonical_identity as canonical_identity
from voicekiosk.x509util import sha256_fingerprint as sha256_fingerprint
from voicekiosk.x509util import spki_sha256_b64 as spki_sha256_b64

# Apple platforms reject TLS server certificates valid for more than 825 days, even under a
# user-installed root (https://support.apple.com/en-us/103769); mkcert stays under it too.
LEAF_VALIDITY = datetime.timedelta(days=800)
RENEW_BEFORE = datetime.timedelta(days=30)
ROTATE_HINT = "run `voicekiosk cert rotate` to make a new CA (devices must then trust the new one)"

_now = x509util.utcnow  # the clock, by a name tests can patch here


@dataclass(frozen=True)
class ServerCert:
    """The server certificate on disk and what it covers."""

    cert_path: Path
    key_path: Path
    identities: tuple[str, ...]
    serial: int
    not_after: datetime.datetime
    reissued: bool


@dataclass(frozen=True)
class CertInfo:
    """What ``voicekiosk cert`` shows; the leaf fields are None until one has been issued."""

    data_dir: Path
    ca_path: Path
    ca_key_path: Path
    ca_subject: str
    ca_sha256: str
    ca_not_after: datetime.datetime
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
    """

    def __init__(self, data_dir: Path) -> None:
        self.data_dir = Path(data_dir)
        self.ca_path = self.data_dir / "ca.pem"
        self.ca_key_path = self.data_dir / "ca-key.pem"
        self.cert_path = self.data_dir / "server.pem"
        self.key_path = self.data_dir / "server-key.pem"
        self.meta_path = self.data_dir / "server.json"
        self._ca: trustme.CA | None = None
        self._ca_cert: x509.Certificate | None = None

    # -- the CA ------------------------------------------------------------------------------

    def ca(self) -> trustme.CA:
        """The CA, loaded from the data directory, or created there on first use.

        Raises:
          StartupError: the directory cannot be used, or ``ca.pem`` exists without a usable
            matching key (it is never replaced silently).
        """
        if self._ca is None:
            self._ensure_dir()
            with self._lock():
                if not self.ca_path.exists() and not self.ca_key_path.exists():
                    cert_pem, key_pem = x509util.new_ca()
                    # Key first: a crash in between leaves a key without a cert, never the reverse.
                    x509util.write_atomic(self.ca_key_path, key_pem, 0o600)
                    x509util.write_atomic(self.ca_path, cert_pem, 0o644)
                self._ca, self._ca_cert = self._load_ca()
        return self._ca

    def _load_ca(self) -> tuple[trustme.CA, x509.Certificate]:
        if not self.ca_path.exists():
            raise StartupError(f"{self.ca_key_path} exists but {self.ca_path} is missing: restore it, or {ROTATE_HINT}")
        if not self.ca_key_path.exists():
            raise StartupError(
                f"{self.ca_path} exists but its key {self.ca_key_path} is missing: restore the key, or {ROTATE_HINT}"
            )
        try:
            cert_pem = self.ca_path.read_bytes()
            key_pem = self.ca_key_path.read_bytes()
        except OSError as exc:
            raise StartupError(f"cannot read the CA in {self.data_dir}: {exc.strerror or exc}") from None
        cert = x509util.load_pair(
            cert_pem,
            key_pem,
            bad_cert=f"{self.ca_path} is not a PEM certificate: {ROTATE_HINT}",
            bad_key=f"{self.ca_key_path} is not an unencrypted PEM private key: {ROTATE_HINT}",
            mismatch=f"{self.ca_key_path} does not belong to {self.ca_path}: {ROTATE_HINT}",
        )
        if not x509util.is_ca(cert):
            raise StartupError(f"{self.ca_path} is not a CA certificate: {ROTATE_HINT}")
        if cert.not_valid_after_utc <= _now():
            raise StartupError(
                f"the CA in {self.ca_path} expired on {cert.not_valid_after_utc:%Y-%m-%d}: {ROTATE_HINT}"
            )
        return trustme.CA.from_pem(cert_pem, key_pem), cert

    def _ca_certificate(self) -> x509.Certificate:
        self.ca()
        assert self._ca_cert is not None
        return self._ca_cert

    def ca_pem(self) -> bytes:
        """The CA certificate, PEM (what devices install)."""
        return self._ca_certificate().public_bytes(serialization.Encoding.PEM)

    def ca_der(self) -> bytes:
        """The CA certificate, DER (``.cer``/``.crt`` for Android and Windows)."""
        return self._ca_certificate().public_bytes(serialization.Encoding.DER)

    def ca_sha256(self) -> str:
        """The CA certificate's SHA-256 fingerprint, colon-separated hex."""
        return self._ca_certificate().fingerprint(hashes.SHA256()).hex(":").upper()

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
        x509util.write_atomic(pem_path, pem, 0o644)
        x509util.write_atomic(der_path, der, 0o644)
        return pem_path, der_path

    def ca_info(self) -> tls.CaInfo:
        """The CA as devices see it: path, common name, subject and fingerprint."""
        subject = self._ca_certificate().subject
        names = subject.get_attributes_for_oid(NameOID.COMMON_NAME)
        name = str(names[0].value) if names else "voicekiosk local CA"
        return tls.CaInfo(self.ca_path, name, subject.rfc4514_string(), self.ca_sha256())

    def apple_profile(self) -> bytes:
        """An Apple configuration profile (``.mobileconfig``) that installs the CA on iOS/macOS."""
        return tls.apple_profile(self.ca_info())

    def rotate(self) -> Path | None:
        """Retire the CA and server certificate and make a new CA.

        The old certificates move to ``retired-<UTC time>/``; the old private keys are deleted,
        since a retired CA key can only do harm. The server certificate is reissued on next use.

        Returns:
          The directory the old certificates went to, or None if there was nothing to retire.

        Raises:
          StartupError: the files cannot be moved or written.
        """
        self._ensure_dir()
        retired: Path | None = None
        with self._lock():
            old = [p for p in (self.ca_path, self.cert_path, self.meta_path) if p.exists()]
            try:
                if old:
                    retired = self.data_dir / f"retired-{_now():%Y%m%dT%H%M%S%fZ}"
                    retired.mkdir(mode=0o700)
                    for path in old:
                        path.replace(retired / path.name)
                for key in (self.ca_key_path, self.key_path):
                    key.unlink(missing_ok=True)
            except OSError as exc:
                raise StartupError(f"cannot retire the CA in {self.data_dir}: {exc.strerror or exc}") from None
            self._ca = self._ca_cert = None
        self.ca()
        return retired

    # -- the server certificate --------------------------------------------------------------

    def identities(self, extra: Iterable[str] = ()) -> tuple[str, ...]:
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

    def server_cert(self, extra: Iterable[str] = ()) -> ServerCert:
        """The server certificate for this machine's current names, issued only if needed.

        It is reissued when the identities differ from the recorded ones (an address came or
        went, a new ``--san``), the CA changed, or it expires within 30 days.

        Args:
          extra: Further names or addresses (``--san``).

        Raises:
          StartupError: the CA cannot be used, a name is invalid, or a file cannot be written.
        """
        wanted = self.identities(extra)
        ca = self.ca()
        with self._lock():
            current = self._current_leaf(wanted)
            if current is not None:
                return current
            now = _now()
            not_after = min(now + LEAF_VALIDITY, self._ca_certificate().not_valid_after_utc)
            cert_pem, key_pem = x509util.issue_server_cert(ca, wanted, now - x509util.BACKDATE, not_after)
            cert = x509.load_pem_x509_certificate(cert_pem)
            x509util.write_atomic(self.key_path, key_pem, 0o600)
            x509util.write_atomic(self.cert_path, cert_pem, 0o644)
            meta = {
                "identities": list(wanted),
                "serial": format(cert.serial_number, "x"),
                "not_after": cert.not_valid_after_utc.isoformat(),
                "ca_sha256": self.ca_sha256(),
            }
            x509util.write_atomic(self.meta_path, (json.dumps(meta, indent=2) + "\n").encode(), 0o644)
            return ServerCert(self.cert_path, self.key_path, wanted, cert.serial_number, cert.not_valid_after_utc, True)

    def _current_leaf(self, wanted: tuple[str, ...]) -> ServerCert | None:
        """The stored server certificate if it is still right for ``wanted``, else None."""
        try:
            meta = json.loads(self.meta_path.read_text(encoding="utf-8"))
            cert = x509.load_pem_x509_certificate(self.cert_path.read_bytes())
            key = serialization.load_pem_private_key(self.key_path.read_bytes(), password=None)
            recorded = tuple(meta["identities"])
            serial = int(meta["serial"], 16)
            ca_sha256 = meta["ca_sha256"]
        except (OSError, ValueError, TypeError, KeyError):
            return None
        if (
            set(recorded) != set(wanted)
            or ca_sha256 != self.ca_sha256()
            or cert.serial_number != serial
            or cert.not_valid_after_utc - _now() <= RENEW_BEFORE
            or x509util.public_der(key.public_key()) != x509util.public_der(cert.public_key())
        ):
            return None
        try:
            cert.verify_directly_issued_by(self._ca_certificate())
        except (ValueError, TypeError, InvalidSignature):
            return None
        return ServerCert(self.cert_path, self.key_path, recorded, serial, cert.not_valid_after_utc, False)

    def describe(self) -> CertInfo:
        """Paths, fingerprints, names and expiry dates (creates the CA if there is none yet).

        Raises:
          StartupError: the CA cannot be loaded or created.
        """
        ca = self._ca_certificate()
        leaf_sha256 = spki = leaf_not_after = None
        names: tuple[str, ...] = ()
        try:
            cert_pem = self.cert_path.read_bytes()
            cert = x509.load_pem_x509_certificate(cert_pem)
        except (OSError, ValueError):
            pass
        else:
            leaf_sha256, spki = sha256_fingerprint(cert_pem), spki_sha256_b64(cert_pem)
            leaf_not_after, names = cert.not_valid_after_utc, x509util.san_names(cert)
        return CertInfo(
            data_dir=self.data_dir,
            ca_path=self.ca_path,
            ca_key_path=self.ca_key_path,
            ca_subject=ca.subject.rfc4514_string(),
            ca_sha256=self.ca_sha256(),
            ca_not_after=ca.not_valid_after_utc,
            cert_path=self.cert_path,
            key_path=self.key_path,
            leaf_sha256=leaf_sha256,
            spki_sha256=spki,
            names=names,
            leaf_not_after=leaf_not_after,
        )

    # -- plumbing ----------------------------------------------------------------------------

    def _ensure_dir(self) -> None:
        try:
            if not self.data_dir.exists():
                self.data_dir.mkdir(parents=True, mode=0o700)
                self.data_dir.chmod(0o700)  # mkdir's mode is filtered by the umask
            elif not self.data_dir.is_dir():
                raise StartupError(f"--data-dir: {self.data_dir} is not a directory")
        except OSError as exc:
            raise StartupError(f"--data-dir: cannot create {self.data_dir}: {exc.strerror or exc}") from None

    @contextlib.contextmanager
    def _lock(self) -> Iterator[None]:
        """Serialise CA creation and issuing between processes sharing the directory."""
        if sys.platform == "win32":
            yield
            return
        import fcntl

        try:
            fd = os.open(self.data_dir / ".lock", os.O_RDWR | os.O_CREAT, 0o600)
        except OSError as exc:
            raise StartupError(f"cannot use {self.data_dir}: {exc.strerror or exc}") from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)


def server_files(settings: Settings) -> dict[str, Any]:
    """Make or reuse, and check, the certificate the HTTPS server presents.

    With ``--cert``/``--key`` those files are checked; otherwise the data directory's CA issues
    (or reuses) a certificate for every name this machine answers on plus ``--san``.

    Returns:
      JSON-able facts for ``tls.TlsFiles``: ``cert``, ``key``, ``spki`` and ``ca`` (the local
      CA's ``path``, ``name``, ``subject``, ``sha256``; None with ``--cert``).

    Raises:
      StartupError: the certificate or key cannot be read, do not match, or have expired; or
        the local CA cannot be used.
    """
    if settings.cert is not None or settings.key is not None:
        if settings.cert is None or settings.key is None:
            raise StartupError("--cert and --key go together: give both or neither")
        x509util.check_own_pair(settings.cert, settings.key)
        cert_path, key_path, ca = settings.cert, settings.key, None
    else:
        extra = list(settings.san)
        # A specific --host is a name clients use too; a wildcard bind address is not.
        if not settings.binds_all and canonical_identity(settings.host):
            extra.append(settings.host)
        store = CertStore(settings.data_dir)
        leaf = store.server_cert(extra)
        cert_path, key_path = leaf.cert_path, leaf.key_path
        info = store.ca_info()
        ca = {"path": str(info.path), "name": info.name, "subject": info.subject, "sha256": info.sha256}
    try:
        spki = spki_sha256_b64(cert_path.read_bytes())
    except (OSError, ValueError) as exc:
        raise StartupError(f"cannot read the certificate {cert_path}: {exc}") from None
    return {"cert": str(cert_path), "key": str(key_path), "spki": spki, "ca": ca}


def server_ssl_context(settings: Settings) -> ssl.SSLContext:
    """The TLS context the HTTPS server uses (TLS 1.2 or newer), made in this process.

    Raises:
      StartupError: as ``server_files``.
    """
    files = server_files(settings)
    return x509util.server_context(Path(files["cert"]), Path(files["key"]))
