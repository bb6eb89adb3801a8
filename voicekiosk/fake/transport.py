"""The network side of the fake agent's calls: which host addresses aioice gathers, which offered
candidates are let through, and, for fault injection, flushing or silencing a call's transports."""

from __future__ import annotations

import asyncio
import time

import aioice.ice
from aiortc import RTCDataChannel, RTCPeerConnection

from voicekiosk import net

LOOPBACK = ("127.0.0.1", "::1")


def patch_host_addresses(*, loopback_only: bool) -> None:
    """Make aioice gather 127.0.0.1 (it leaves loopback out), plus LAN IPv4 unless ``loopback_only``.

    This replaces ``aioice.ice.get_host_addresses`` for the whole process.
    """

    def host_addresses(use_ipv4: bool, use_ipv6: bool) -> list[str]:
        if loopback_only:
            return ["127.0.0.1"]
        return ["127.0.0.1", *(a for a in net.lan_addresses() if ":" not in a and not a.startswith("169.254."))]

    aioice.ice.get_host_addresses = host_addresses


def strip_candidates(sdp: str) -> tuple[str, int]:
    """Drop every ``a=candidate`` line whose address is not loopback; returns the SDP and the count."""
    kept, dropped = [], 0
    for line in sdp.splitlines(keepends=True):
        fields = line.split()
        if line.startswith("a=candidate:") and (len(fields) < 5 or fields[4] not in LOOPBACK):
            dropped += 1
        else:
            kept.append(line)
    return "".join(kept), dropped


def cut_transports(pc: RTCPeerConnection) -> None:
    """Close the sockets under every transport of ``pc``: no media, data, ICE or DTLS, and no goodbye."""
    transports = [t.sender.transport for t in pc.getTransceivers()]
    if pc.sctp is not None:
        transports.append(pc.sctp.transport)
    for dtls in transports:
        for protocol in getattr(getattr(dtls.transport, "_connection", None), "_protocols", []):
            protocol.transport.close()


async def flush(pc: RTCPeerConnection, channel: RTCDataChannel | None, timeout: float = 1.0) -> None:
    """Wait (bounded) until what went on ``channel`` has been sent and acknowledged."""
    deadline, sctp = time.monotonic() + timeout, pc.sctp
    while time.monotonic() < deadline:
        queued = channel is not None and channel.bufferedAmount > 0
        if not (queued or getattr(sctp, "_outbound_queue", None) or getattr(sctp, "_sent_queue", None)):
            return
        await asyncio.sleep(0.01)
