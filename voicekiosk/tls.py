"""TLS for the running server, without the certificate machinery living in it.

Making and checking certificates needs ``cryptography`` (about 8 MB resident, for a server that
idles for days). So ``prepare`` runs that work in a short-lived forked child (``certs.py``) and
the server keeps only what it needs: file paths and a few facts, loaded with the standard library.
"""

from __future__ import annotations

import json
import os
import plistlib
import ssl
import sys
import traceback
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from voicekiosk.errors import StartupError
from voicekiosk.settings import Settings


@dataclass(frozen=True)
class CaInfo:
    """The local CA as devices see it."""

    path: Path
    name: str  # its common name: how phones list it
    subject: str
    sha256: str  # colon-separated hex fingerprint

    def pem(self) -> bytes:
        return self.path.read_bytes()

    def der(self) -> bytes:
        return ssl.PEM_cert_to_DER_cert(self.pem().decode("ascii"))


@dataclass(frozen=True)
class TlsFiles:
    """The certificate the server presents, and the CA behind it (None for ``--cert``)."""

    cert: Path
    key: Path
    spki: str  # base64 SHA-256 of its public key: what a kiosk browser is told to trust
    ca: CaInfo | None


def prepare(settings: Settings) -> TlsFiles:
    """Make or reuse (and check) the server certificate, in a child process where possible.

    Raises:
      StartupError: as ``certs.server_files``.
    """
    facts = _isolated(_server_files, settings)
    ca = facts.get("ca")
    return TlsFiles(
        cert=Path(facts["cert"]),
        key=Path(facts["key"]),
        spki=facts["spki"],
        ca=CaInfo(Path(ca["path"]), ca["name"], ca["subject"], ca["sha256"]) if ca else None,
    )


def server_context(files: TlsFiles) -> ssl.SSLContext:
    """The HTTPS server's context: TLS 1.2 or newer.

    Raises:
      StartupError: the files cannot be loaded.
    """
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    try:
        context.load_cert_chain(files.cert, files.key)
    except (OSError, ssl.SSLError) as exc:
        raise StartupError(f"cannot load {files.cert} with {files.key}: {exc}") from None
    return context


def apple_profile(ca: CaInfo) -> bytes:
    """An Apple configuration profile (``.mobileconfig``) that installs the CA on iOS/macOS.

    Serve it as ``application/x-apple-aspen-config``. Its UUIDs derive from the CA's
    fingerprint, so the same CA always gives the same bytes and a new CA a new profile.
    """
    digest = ca.sha256.replace(":", "").lower()

    def derived(part: str) -> str:
        return str(uuid.uuid5(uuid.NAMESPACE_URL, f"voicekiosk:ca:{digest}:{part}")).upper()

    payload_uuid, profile_uuid = derived("root"), derived("profile")
    profile = {
        "PayloadContent": [
            {
                "PayloadCertificateFileName": "voicekiosk-ca.cer",
                "PayloadContent": ca.der(),
                "PayloadDescription": "Adds the voicekiosk local CA root certificate.",
                "PayloadDisplayName": ca.name,
                "PayloadIdentifier": f"com.apple.security.root.{payload_uuid}",
                "PayloadType": "com.apple.security.root",
                "PayloadUUID": payload_uuid,
                "PayloadVersion": 1,
            }
        ],
        "PayloadDescription": f"Trust {ca.subject} (SHA-256 {ca.sha256}) so this device can "
        "open the voicekiosk page over HTTPS.",
        "PayloadDisplayName": ca.name,
        "PayloadIdentifier": f"local.voicekiosk.ca.{digest[:16]}",
        "PayloadRemovalDisallowed": False,
        "PayloadType": "Configuration",
        "PayloadUUID": profile_uuid,
        "PayloadVersion": 1,
    }
    return plistlib.dumps(profile, fmt=plistlib.FMT_XML, sort_keys=True)


def _server_files(settings: Settings) -> dict[str, Any]:
    from voicekiosk import certs

    return certs.server_files(settings)


def _isolated(work: Callable[[Settings], dict[str, Any]], settings: Settings) -> dict[str, Any]:
    """``work(settings)`` in a forked child (Linux); its JSON result or its StartupError here.

    Elsewhere (no safe fork) it runs in this process, which then keeps the imports.
    """
    if not sys.platform.startswith("linux") or "voicekiosk.certs" in sys.modules:
        return work(settings)
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: never returns
        status = 0
        try:
            os.close(read)
            message: dict[str, Any]
            try:
                message = {"ok": work(settings)}
            except StartupError as exc:
                message = {"error": str(exc)}
            except BaseException:
                message = {"error": "could not prepare the certificate:\n" + traceback.format_exc()}
            with os.fdopen(write, "w", encoding="utf-8") as out:
                json.dump(message, out)
        except BaseException:
            status = 1
        finally:
            os._exit(status)
    os.close(write)
    with os.fdopen(read, encoding="utf-8") as answer:
        text = answer.read()
    os.waitpid(pid, 0)
    try:
        message = json.loads(text)
    except ValueError:
        raise StartupError("could not prepare the certificate (its helper process died)") from None
    if "error" in message:
        raise StartupError(message["error"])
    result: dict[str, Any] = message["ok"]
    return result
