"""The local CA and the server certificate it signs, kept in the data directory.

Phones only give a web page the microphone over HTTPS, so voicekiosk makes its own CA on first
use (``ca.pem``, ``ca-key.pem``) and issues a server certificate (``server.pem``,
``server-key.pem``, ``server.json``) for every name and LAN address this machine answers on.
Devices trust the CA once; the server certificate is reissued whenever the set of names changes
or it nears expiry, and the devices never notice.

trustme issues the server certificates. The CA certificate itself is built here, because
trustme's CA is valid until the year 3000 and has no common name; ``trustme.CA.from_pem`` then
wraps it.
"""

from __future__ import annotations

import base64
import contextlib
import datetime
import getpass
import hashlib
import ipaddress
import json
import os
import re
import socket
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
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from voicekiosk import net, tls
from voicekiosk.errors import StartupError
from voicekiosk.settings import Settings

CA_VALIDITY = datetime.timedelta(days=3650)
# Apple platforms reject TLS server certificates valid for more than 825 days, even under a
# user-installed root (https://support.apple.com/en-us/103769); mkcert stays under it too.
LEAF_VALIDITY = datetime.timedelta(days=800)
RENEW_BEFORE = datetime.timedelta(days=30)
# Tolerates a device whose clock is a little behind ours.
BACKDATE = datetime.timedelta(hours=1)
ROTATE_HINT = "run `voicekiosk cert rotate` to make a new CA (devices must then trust the new one)"

_LABEL = re.compile(r"(?!-)[a-z0-9-]{1,63}(?<!-)")
_WILDCARD_HOSTS = {"", "0.0.0.0", "::"}


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


def _now() -> datetime.datetime:
    return datetime.datetime.now(datetime.UTC)


def sha256_fingerprint(cert_pem: bytes) -> str:
    """SHA-256 of the (first) certificate's DER, as colon-separated hex (``AB:12:...``).

    Raises:
      ValueError: ``cert_pem`` holds no PEM certificate.
    """
    digest = x509.load_pem_x509_certificate(cert_pem).fingerprint(hashes.SHA256())
    return digest.hex(":").upper()


def spki_sha256_b64(cert_pem: bytes) -> str:
    """Base64 SHA-256 of the certificate's SubjectPublicKeyInfo.

    This is the value Chromium's ``--ignore-certificate-errors-spki-list`` takes.

    Raises:
      ValueError: ``cert_pem`` holds no PEM certificate.
    """
    spki = (
        x509.load_pem_x509_certificate(cert_pem)
        .public_key()
        .public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    )
    return base64.b64encode(hashlib.sha256(spki).digest()).decode("ascii")


def canonical_identity(text: str) -> str | None:
    """An IP address in its canonical form, or a host name as a lowercase A-label; None if invalid."""
    text = text.strip().strip("[]")
    try:
        return str(ipaddress.ip_address(text.split("%", 1)[0]))
    except ValueError:
        pass
    try:
        name = text.rstrip(".").lower().encode("idna").decode("ascii")
    except UnicodeError:
        return None
    labels = name.split(".")
    if labels[0] == "*" and len(labels) > 2:
        labels = labels[1:]
    if not all(_LABEL.fullmatch(label) for label in labels) or len(name) > 253:
        return None
    return name


def _public_der(key: Any) -> bytes:
    return bytes(key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo))


def _new_ca() -> tuple[bytes, bytes]:
    """A fresh self-signed CA: (cert PEM, unencrypted key PEM)."""
    host = socket.gethostname() or "localhost"
    try:
        unit = f"{getpass.getuser()}@{host}"
    except (KeyError, OSError):
        unit = host
    name = x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "voicekiosk local CA"),
            x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, unit[:64]),
            x509.NameAttribute(NameOID.COMMON_NAME, f"voicekiosk CA on {host}"[:64]),
        ]
    )
    key = ec.generate_private_key(ec.SECP256R1())
    now = _now()
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - BACKDATE)
        .not_valid_after(now + CA_VALIDITY)
        # path_length=0: this CA signs server certificates only, never another CA.
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    key_pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    return cert.public_bytes(serialization.Encoding.PEM), key_pem


def _write(path: Path, data: bytes, mode: int) -> None:
    """Write atomically (temp file + rename) with ``mode`` from the first byte on."""
    tmp = path.with_name(f".{path.name}.tmp")
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
        with os.fdopen(fd, "wb") as f:
            os.fchmod(f.fileno(), mode)
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except OSError as exc:
        raise StartupError(f"cannot write {path}: {exc.strerror or exc}") from None


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
                    cert_pem, key_pem = _new_ca()
                    # Key first: a crash in between leaves a key without a cert, never the reverse.
                    _write(self.ca_key_path, key_pem, 0o600)
                    _write(self.ca_path, cert_pem, 0o644)
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
        try:
            cert = x509.load_pem_x509_certificate(cert_pem)
        except ValueError:
            raise StartupError(f"{self.ca_path} is not a PEM certificate: {ROTATE_HINT}") from None
        try:
            key = serialization.load_pem_private_key(key_pem, password=None)
        except (ValueError, TypeError):
            raise StartupError(f"{self.ca_key_path} is not an unencrypted PEM private key: {ROTATE_HINT}") from None
        if _public_der(key.public_key()) != _public_der(cert.public_key()):
            raise StartupError(f"{self.ca_key_path} does not belong to {self.ca_path}: {ROTATE_HINT}")
        try:
            constraints = cert.extensions.get_extension_for_class(x509.BasicConstraints).value
        except x509.ExtensionNotFound:
            constraints = None
        if constraints is None or not constraints.ca:
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
        _write(pem_path, pem, 0o644)
        _write(der_path, der, 0o644)
        return pem_path, der_path

    def apple_profile(self) -> bytes:
        """An Apple configuration profile (``.mobileconfig``) that installs the CA on iOS/macOS."""
        subject = self._ca_certificate().subject
        names = subject.get_attributes_for_oid(NameOID.COMMON_NAME)
        name = str(names[0].value) if names else "voicekiosk local CA"
        return tls.apple_profile(tls.CaInfo(self.ca_path, name, subject.rfc4514_string(), self.ca_sha256()))

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
            leaf = ca.issue_cert(
                *wanted,
                organization_name="voicekiosk",
                organization_unit_name=f"voicekiosk server on {socket.gethostname() or 'localhost'}"[:64],
                # trustme's default notBefore is 2000-01-01, which Apple would count in the lifetime.
                not_before=now - BACKDATE,
                not_after=not_after,
            )
            cert_pem = b"".join(blob.bytes() for blob in leaf.cert_chain_pems)
            cert = x509.load_pem_x509_certificate(cert_pem)
            _write(self.key_path, leaf.private_key_pem.bytes(), 0o600)
            _write(self.cert_path, cert_pem, 0o644)
            meta = {
                "identities": list(wanted),
                "serial": format(cert.serial_number, "x"),
                "not_after": cert.not_valid_after_utc.isoformat(),
                "ca_sha256": self.ca_sha256(),
            }
            _write(self.meta_path, (json.dumps(meta, indent=2) + "\n").encode(), 0o644)
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
            or _public_der(key.public_key()) != _public_der(cert.public_key())
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
            leaf_not_after = cert.not_valid_after_utc
            with contextlib.suppress(x509.ExtensionNotFound):
                san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
                names = tuple(str(v) for v in san.get_values_for_type(x509.DNSName)) + tuple(
                    str(v) for v in san.get_values_for_type(x509.IPAddress)
                )
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
        _check_own(settings.cert, settings.key)
        cert_path, key_path, ca = settings.cert, settings.key, None
    else:
        extra = list(settings.san)
        # A specific --host is a name clients use too; a wildcard bind address is not.
        if settings.host.strip("[]") not in _WILDCARD_HOSTS and canonical_identity(settings.host):
            extra.append(settings.host)
        store = CertStore(settings.data_dir)
        leaf = store.server_cert(extra)
        cert_path, key_path = leaf.cert_path, leaf.key_path
        subject = store._ca_certificate().subject
        names = subject.get_attributes_for_oid(NameOID.COMMON_NAME)
        ca = {
            "path": str(store.ca_path),
            "name": str(names[0].value) if names else "voicekiosk local CA",
            "subject": subject.rfc4514_string(),
            "sha256": store.ca_sha256(),
        }
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
    context = _context(Path(files["cert"]), Path(files["key"]))
    return context


def _context(cert_path: Path, key_path: Path) -> ssl.SSLContext:
    def no_password() -> str:
        # Without a callback OpenSSL would prompt on the terminal for an encrypted key.
        raise StartupError(f"--key: {key_path} is encrypted; voicekiosk needs an unencrypted key")

    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    try:
        ctx.load_cert_chain(cert_path, key_path, password=no_password)
    except ssl.SSLError as exc:
        raise StartupError(f"cannot load {cert_path} with {key_path}: {exc.reason or exc}") from None
    except OSError as exc:
        raise StartupError(f"cannot read {cert_path} or {key_path}: {exc.strerror or exc}") from None
    return ctx


def _check_own(cert_path: Path, key_path: Path) -> None:
    """Check a user-supplied pair with clear messages before handing it to OpenSSL."""
    try:
        cert_pem, key_pem = cert_path.read_bytes(), key_path.read_bytes()
    except OSError as exc:
        raise StartupError(f"--cert/--key: cannot read {exc.filename}: {exc.strerror or exc}") from None
    try:
        cert = x509.load_pem_x509_certificate(cert_pem)
    except ValueError:
        raise StartupError(f"--cert: {cert_path} holds no PEM certificate") from None
    try:
        key = serialization.load_pem_private_key(key_pem, password=None)
    except TypeError:
        raise StartupError(f"--key: {key_path} is encrypted; voicekiosk needs an unencrypted key") from None
    except ValueError:
        raise StartupError(f"--key: {key_path} holds no PEM private key") from None
    if _public_der(key.public_key()) != _public_der(cert.public_key()):
        raise StartupError(f"--key: {key_path} is not the key of the certificate in {cert_path}")
    if cert.not_valid_after_utc <= _now():
        raise StartupError(f"--cert: {cert_path} expired on {cert.not_valid_after_utc:%Y-%m-%d}")
    _context(cert_path, key_path)  # and OpenSSL must take it too
