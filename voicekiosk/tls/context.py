"""TLS for the running server, without the certificate machinery living in it.

Making and checking certificates needs ``cryptography`` (about 8 MB resident, for a server that
idles for days). So ``prepare`` runs that work (``leaf.server_files``) in a short-lived forked
child, and the server keeps only what it needs: file paths and a few facts, loaded with the
standard library.
"""

from __future__ import annotations

import json
import os
import ssl
import sys
import traceback
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from voicekiosk.errors import StartupError
from voicekiosk.settings import Settings
from voicekiosk.tls.profile import CaInfo


@dataclass(frozen=True)
class TlsFiles:
    """The certificate the server presents, and the CA behind it (None for ``--cert``)."""

    cert: Path
    key: Path
    spki: str  # base64 SHA-256 of its public key: what a kiosk browser is told to trust
    ca: CaInfo | None
    left_out: tuple[str, ...] = ()  # this machine's names and addresses the CA may not vouch for


def prepare(settings: Settings) -> TlsFiles:
    """Make or reuse (and check) the server certificate, in a child process where possible.

    Raises:
      StartupError: as ``leaf.server_files``.
    """
    facts = _isolated(settings)
    ca = facts.get("ca")
    return TlsFiles(
        cert=Path(facts["cert"]),
        key=Path(facts["key"]),
        spki=facts["spki"],
        ca=CaInfo(**(ca | {"path": Path(ca["path"])})) if ca else None,
        left_out=tuple(facts["left_out"]),
    )


def server_context(files: TlsFiles) -> ssl.SSLContext:
    """The HTTPS server's context (TLS 1.2 or newer) presenting ``files``' certificate.

    Raises:
      StartupError: OpenSSL cannot read or load the pair, or the key is encrypted.
    """
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    load_certificate(context, files)
    return context


def load_certificate(context: ssl.SSLContext, files: TlsFiles) -> None:
    """Present ``files``' certificate from now on (new handshakes; live ones keep theirs).

    Raises:
      StartupError: as ``server_context``.
    """

    def no_password() -> str:
        # Without a callback OpenSSL would prompt on the terminal for an encrypted key.
        raise StartupError(f"--key: {files.key} is encrypted; voicekiosk needs an unencrypted key")

    try:
        context.load_cert_chain(files.cert, files.key, password=no_password)
    except ssl.SSLError as exc:
        raise StartupError(f"cannot load {files.cert} with {files.key}: {exc.reason or exc}") from None
    except OSError as exc:
        raise StartupError(f"cannot read {files.cert} or {files.key}: {exc.strerror or exc}") from None


def _server_files(settings: Settings) -> dict[str, Any]:
    from voicekiosk.tls.leaf import server_files  # cryptography: in the child only

    return server_files(settings)


def _isolated(settings: Settings) -> dict[str, Any]:
    """``store.server_files(settings)`` in a forked child (Linux); its JSON result or its StartupError here.

    Elsewhere (no safe fork), or once this process has loaded the store anyway, it runs here.
    """
    if not sys.platform.startswith("linux") or "voicekiosk.tls.leaf" in sys.modules:
        return _server_files(settings)
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: never returns
        status = 0
        try:
            os.close(read)
            message: dict[str, Any]
            try:
                message = {"ok": _server_files(settings)}
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
