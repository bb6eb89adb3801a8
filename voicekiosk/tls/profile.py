"""The local CA as devices see it, and the Apple configuration profile that installs it."""

from __future__ import annotations

import plistlib
import ssl
import uuid
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class CaInfo:
    """The local CA as devices see it."""

    path: Path
    name: str  # its common name: how phones list it
    subject: str
    sha256: str  # colon-separated hex fingerprint
    constrained: bool  # it may vouch only for this kiosk's names and local networks

    @property
    def short_fingerprint(self) -> str:
        """The fingerprint's first 64 bits in four groups (``AB12 CD34 EF56 7890``): easy to
        compare by eye, and far too many bits to forge a matching CA for."""
        digits = self.sha256.replace(":", "")[:16]
        return " ".join(digits[i : i + 4] for i in range(0, 16, 4))

    def pem(self) -> bytes:
        return self.path.read_bytes()

    def der(self) -> bytes:
        return ssl.PEM_cert_to_DER_cert(self.pem().decode("ascii"))


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
