"""What the terminal says when the server starts: every URL the page is at, and what to warn the
operator about (settings, certificate, tools)."""

from __future__ import annotations

import logging

from voicekiosk import net
from voicekiosk.combinations import ignored
from voicekiosk.console import Endpoint
from voicekiosk.settings import Settings
from voicekiosk.tls.context import TlsFiles

log = logging.getLogger("voicekiosk.server")


def endpoints(settings: Settings, lan: list[str], token: str | None) -> list[Endpoint]:
    """Every URL the page can be opened at, loopback first; LAN links carry the access token."""
    query = f"?token={token}" if token else ""

    def remote(label: str, host: str) -> Endpoint:
        return Endpoint(label, settings.page_url(host, "/" + query), settings.setup_url(host), qr=True)

    if settings.binds_all:
        found = [Endpoint("this machine", settings.page_url("localhost"))]
        ipv4_only = settings.host == "0.0.0.0"
        found += [remote(f"LAN {a}", a) for a in lan if not (ipv4_only and ":" in a)]
        return found
    if net.is_loopback(settings.host):
        return [Endpoint("this machine", settings.page_url(settings.host))]
    return [remote("listening on", settings.host)]


def warn_about(files: TlsFiles) -> None:
    """Say what the certificate cannot do, and how to fix it."""
    if files.ca and not files.ca.constrained:
        log.warning(
            "The local CA in %s can vouch for any website (an older voicekiosk made it without name "
            "constraints): whoever copies its key could impersonate any site to the devices that trust it. "
            "Run `voicekiosk cert rotate`, then trust the new CA on each device.",
            files.ca.path.parent,
        )
    if files.left_out:
        log.warning(
            "Left out of the certificate: %s (the local CA may vouch only for this machine's names, local "
            "names and private addresses). To serve them: --cert/--key with a certificate of your own, or "
            "`voicekiosk cert rotate --san NAME` (then trust the new CA on each device).",
            ", ".join(files.left_out),
        )


def startup_notes(settings: Settings, lan: list[str]) -> list[str]:
    """What the banner must warn about."""
    notes = []
    if not settings.api_key and not settings.demo:
        notes.append("No OpenAI API key: set OPENAI_API_KEY and restart. The page will say so.")
    if settings.binds_all and not lan:
        notes.append("No LAN address found: only this machine can open the page.")
    if settings.open and not net.is_loopback(settings.host):
        notes.append("--open: any device on the network can talk, and you pay for it.")
    if unused := ignored(settings):
        notes.append(f"{', '.join(unused)}: not used by the {settings.engine} engine.")
    if settings.tools.runs_here and settings.sdp == "browser":
        also = " (remote MCP servers still work: OpenAI calls them)" if settings.tools.remote_mcp else ""
        notes.append(
            f"Tools are configured, but --sdp browser gives the server no sideband: the agent talks without them{also}."
        )
    for remote in settings.tools.remote_mcp:
        notes.append(f"Remote MCP server {remote.name}: OpenAI shows its URL to the page, so it must hold no secret.")
    return notes
