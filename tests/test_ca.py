"""The local CA on disk: private modes, its name and lifetime, a lost or foreign key, rotation, export."""

from __future__ import annotations

import datetime
import hashlib
import plistlib
import socket
import uuid
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from tests.certs import SAN, leaf_of, mode
from voicekiosk.errors import StartupError
from voicekiosk.tls.certificates import sha256_fingerprint
from voicekiosk.tls.leaf import server_cert
from voicekiosk.tls.profile import apple_profile
from voicekiosk.tls.store import CertStore

pytestmark = pytest.mark.usefixtures("no_lan")  # never the machine's real LAN addresses


def test_ca_persists_with_private_modes(store: CertStore, data_dir: Path) -> None:
    server_cert(store)
    assert CertStore(data_dir).ca_sha256() == store.ca_sha256()
    assert mode(data_dir) == 0o700
    assert mode(data_dir / "ca-key.pem") == 0o600
    assert mode(data_dir / "server-key.pem") == 0o600
    assert mode(data_dir / "ca.pem") == 0o644


def test_ca_names_itself_and_has_a_sane_lifetime(store: CertStore) -> None:
    ca = x509.load_pem_x509_certificate(store.ca_pem())
    lifetime = ca.not_valid_after_utc - ca.not_valid_before_utc
    assert datetime.timedelta(days=3640) < lifetime < datetime.timedelta(days=3660)
    assert ca.subject.get_attributes_for_oid(NameOID.ORGANIZATION_NAME)[0].value == "voicekiosk local CA"
    assert ca.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == (
        f"voicekiosk CA on {socket.gethostname()}"
    )
    constraints = ca.extensions.get_extension_for_class(x509.BasicConstraints).value
    assert constraints.ca and constraints.path_length == 0


def test_missing_ca_key_is_an_error_not_a_new_ca(store: CertStore, data_dir: Path) -> None:
    ca_pem = store.ca_pem()
    (data_dir / "ca-key.pem").unlink()
    with pytest.raises(StartupError, match=r"ca-key\.pem is missing.*voicekiosk cert rotate"):
        server_cert(CertStore(data_dir))
    assert (data_dir / "ca.pem").read_bytes() == ca_pem
    assert not (data_dir / "ca-key.pem").exists()


def test_foreign_ca_key_is_an_error(store: CertStore, data_dir: Path) -> None:
    store.ca()
    other = ec.generate_private_key(ec.SECP256R1()).private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    (data_dir / "ca-key.pem").write_bytes(other)
    with pytest.raises(StartupError, match=r"does not belong to.*voicekiosk cert rotate"):
        CertStore(data_dir).ca()
    (data_dir / "ca-key.pem").write_bytes(b"not a key")
    with pytest.raises(StartupError, match="not an unencrypted PEM private key"):
        CertStore(data_dir).ca()
    (data_dir / "ca.pem").unlink()
    with pytest.raises(StartupError, match=r"ca\.pem is missing"):
        CertStore(data_dir).ca()


def test_rotate_makes_a_new_ca_and_retires_the_old(store: CertStore, data_dir: Path) -> None:
    old_leaf = server_cert(store)
    old_sha = store.ca_sha256()
    (data_dir / "ca-key.pem").unlink()  # rotate is also the way out of a lost key
    retired = store.rotate()
    assert retired is not None and (retired / "ca.pem").exists() and mode(retired) == 0o700
    assert not list(retired.glob("*key*"))
    assert store.ca_sha256() != old_sha == sha256_fingerprint((retired / "ca.pem").read_bytes())
    new_leaf = server_cert(CertStore(data_dir))
    assert new_leaf.reissued and new_leaf.serial != old_leaf.serial
    leaf_of(new_leaf.cert_path).verify_directly_issued_by(x509.load_pem_x509_certificate(store.ca_pem()))


def test_describe_export_and_apple_profile(store: CertStore, data_dir: Path, tmp_path: Path) -> None:
    server_cert(store, [SAN])
    info = store.describe()
    assert info.ca_sha256 == hashlib.sha256(store.ca_der()).digest().hex(":").upper()
    assert SAN in info.names and "::1" in info.names
    assert info.leaf_not_after is not None and info.ca_not_after > info.leaf_not_after

    pem_path, der_path = store.export_ca(tmp_path / "out")
    assert pem_path.read_bytes() == (data_dir / "ca.pem").read_bytes()
    assert (
        x509.load_der_x509_certificate(der_path.read_bytes()).fingerprint(hashes.SHA256())
        == hashlib.sha256(store.ca_der()).digest()
    )
    assert b"PRIVATE" not in pem_path.read_bytes() + der_path.read_bytes()

    profile = apple_profile(store.ca_info())
    assert profile == apple_profile(CertStore(data_dir).ca_info())  # deterministic
    plist = plistlib.loads(profile)
    assert plist["PayloadType"] == "Configuration"
    (root,) = plist["PayloadContent"]
    assert root["PayloadType"] == "com.apple.security.root"
    assert root["PayloadContent"] == store.ca_der()
    assert uuid.UUID(root["PayloadUUID"]) != uuid.UUID(plist["PayloadUUID"])
    store.rotate()
    assert plistlib.loads(apple_profile(store.ca_info()))["PayloadUUID"] != plist["PayloadUUID"]
