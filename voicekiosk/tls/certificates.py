"""Pure helpers on certificates and keys: fingerprints, names, a new CA and the server
certificates it issues, checked key pairs.

Nothing here knows about the data directory; ``store.CertStore`` keeps the files. Both
certificates are built with ``cryptography`` directly: the CA carries name constraints and a
common name phones can list, and both carry the serverAuth purpose and nothing else.
"""

from __future__ import annotations

import base64
import datetime
import getpass
import hashlib
import ipaddress
import re
import socket
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.types import CertificateIssuerPrivateKeyTypes, PrivateKeyTypes
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from voicekiosk.errors import StartupError

CA_VALIDITY = datetime.timedelta(days=3650)
# Tolerates a device whose clock is a little behind ours.
BACKDATE = datetime.timedelta(hours=1)

_LABEL = re.compile(r"(?!-)[a-z0-9-]{1,63}(?<!-)")


def utcnow() -> datetime.datetime:
    """The current time, timezone-aware UTC."""
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


def is_ca(cert: x509.Certificate) -> bool:
    """Whether the certificate's basic constraints make it a CA."""
    try:
        return bool(cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca)
    except x509.ExtensionNotFound:
        return False


def san_names(cert: x509.Certificate) -> tuple[str, ...]:
    """The DNS names, then the IP addresses, in the certificate's subjectAltName (none if it has none)."""
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return ()
    return tuple(str(v) for v in san.get_values_for_type(x509.DNSName)) + tuple(
        str(v) for v in san.get_values_for_type(x509.IPAddress)
    )


def public_der(key: Any) -> bytes:
    """A public key as DER SubjectPublicKeyInfo, for comparing keys."""
    return bytes(key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo))


def new_ca(constraints: x509.NameConstraints) -> tuple[bytes, bytes]:
    """A fresh self-signed CA that may vouch only for ``constraints``: (cert PEM, unencrypted key PEM)."""
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
    now = utcnow()
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
        .add_extension(_key_usage(cert_sign=True), critical=True)
        .add_extension(constraints, critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    return cert.public_bytes(serialization.Encoding.PEM), _private_pem(key)


def issue_server_cert(
    ca_cert: x509.Certificate,
    ca_key: CertificateIssuerPrivateKeyTypes,
    names: Iterable[str],
    not_before: datetime.datetime,
    not_after: datetime.datetime,
) -> tuple[bytes, bytes]:
    """A server certificate from the CA for ``names`` (canonical names and addresses):
    (cert PEM, unencrypted key PEM)."""
    key = ec.generate_private_key(ec.SECP256R1())
    host = socket.gethostname() or "localhost"
    alt_names: list[x509.GeneralName] = []
    for name in names:
        try:
            alt_names.append(x509.IPAddress(ipaddress.ip_address(name)))
        except ValueError:
            alt_names.append(x509.DNSName(name))
    subject = x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "voicekiosk"),
            x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, f"voicekiosk server on {host}"[:64]),
        ]
    )
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(ca_cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before)
        .not_valid_after(not_after)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(_key_usage(cert_sign=False), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(x509.SubjectAlternativeName(alt_names), critical=False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_cert.public_key()),  # type: ignore[arg-type]
            critical=False,
        )
        .sign(ca_key, hashes.SHA256())
    )
    return cert.public_bytes(serialization.Encoding.PEM), _private_pem(key)


def _key_usage(*, cert_sign: bool) -> x509.KeyUsage:
    return x509.KeyUsage(
        digital_signature=True,
        content_commitment=False,
        key_encipherment=False,
        data_encipherment=False,
        key_agreement=False,
        key_cert_sign=cert_sign,
        crl_sign=cert_sign,
        encipher_only=False,
        decipher_only=False,
    )


def _private_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


def load_pair(
    cert_path: Path,
    key_path: Path,
    *,
    bad_cert: str,
    bad_key: str,
    mismatch: str,
    encrypted_key: str | None = None,
    label: str = "",
) -> tuple[x509.Certificate, PrivateKeyTypes]:
    """The certificate in ``cert_path`` and its unencrypted private key from ``key_path``.

    Each keyword is the message for one way the pair can be wrong; ``encrypted_key`` defaults
    to ``bad_key``; ``label`` starts the message when a file cannot be read.

    Raises:
      StartupError: with the message for what is wrong.
    """
    try:
        cert_pem, key_pem = cert_path.read_bytes(), key_path.read_bytes()
    except OSError as exc:
        raise StartupError(f"{label}cannot read {exc.filename}: {exc.strerror or exc}") from None
    try:
        cert = x509.load_pem_x509_certificate(cert_pem)
    except ValueError:
        raise StartupError(bad_cert) from None
    try:
        key = serialization.load_pem_private_key(key_pem, password=None)
    except TypeError:
        raise StartupError(bad_key if encrypted_key is None else encrypted_key) from None
    except ValueError:
        raise StartupError(bad_key) from None
    if public_der(key.public_key()) != public_der(cert.public_key()):
        raise StartupError(mismatch)
    return cert, key


def check_own_pair(cert_path: Path, key_path: Path) -> None:
    """Check a user-supplied ``--cert``/``--key`` pair with clear messages before handing it to OpenSSL.

    Raises:
      StartupError: the files cannot be read, do not match, or have expired.
    """
    cert, _ = load_pair(
        cert_path,
        key_path,
        label="--cert/--key: ",
        bad_cert=f"--cert: {cert_path} holds no PEM certificate",
        bad_key=f"--key: {key_path} holds no PEM private key",
        encrypted_key=f"--key: {key_path} is encrypted; voicekiosk needs an unencrypted key",
        mismatch=f"--key: {key_path} is not the key of the certificate in {cert_path}",
    )
    if cert.not_valid_after_utc <= utcnow():
        raise StartupError(f"--cert: {cert_path} expired on {cert.not_valid_after_utc:%Y-%m-%d}")
