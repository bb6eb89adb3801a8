"""The names and addresses other devices can reach this machine by (for the certificate's SANs).

On Linux the addresses come from rtnetlink, which answers for the caller's network namespace
(``/sys/class/net`` does not: it shows the namespace sysfs was mounted in). Nothing here
resolves names over the network or sends a packet.
"""

from __future__ import annotations

import contextlib
import ipaddress
import socket
import struct
import sys
from collections.abc import Iterable, Iterator

# rtnetlink constants (linux/netlink.h, linux/rtnetlink.h, linux/if_addr.h, linux/if.h).
_NLMSG_HDR = struct.Struct("=IHHII")  # len, type, flags, seq, pid
_NLMSG_ERROR, _NLMSG_DONE = 2, 3
_NLM_F_REQUEST, _NLM_F_DUMP = 0x1, 0x300
_RTM_NEWLINK, _RTM_GETLINK, _RTM_NEWADDR, _RTM_GETADDR = 16, 18, 20, 22
_IFINFOMSG = struct.Struct("=BxHiII")  # family, type, index, flags, change
_IFADDRMSG = struct.Struct("=BBBBI")  # family, prefixlen, flags, scope, index
_RTA_HDR = struct.Struct("=HH")
_IFA_ADDRESS, _IFA_LOCAL, _IFA_FLAGS = 1, 2, 8
_IFF_UP, _IFF_LOOPBACK = 0x1, 0x8
_RT_SCOPE_UNIVERSE = 0
# Temporary (privacy) IPv6 addresses rotate daily; each change would reissue the certificate.
_IFA_F_SKIP = 0x01 | 0x08 | 0x20  # temporary, DAD failed, deprecated


def loopback_names() -> list[str]:
    """The names every local certificate covers, whatever the network."""
    return ["localhost", "127.0.0.1", "::1"]


def is_loopback(host: str | None) -> bool:
    """True for ``localhost`` and any loopback address (zone suffix and IPv4-mapped form too)."""
    if not host:
        return False
    if host.lower() == "localhost":
        return True
    try:
        ip = ipaddress.ip_address(host.strip("[]").split("%", 1)[0])
    except ValueError:
        return False
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped:
        ip = ip.ipv4_mapped
    return ip.is_loopback


LOOPBACK_DEVICE = "loopback"


def device_of(address: str | None) -> str:
    """Who is behind ``address``, for per-device budgets: ``loopback`` for this machine, an IPv4
    address as it is, and an IPv6 address as its /64 (one device may use any address of its
    /64, so counting addresses would let it escape every budget)."""
    if not address:
        return "?"
    if is_loopback(address):
        return LOOPBACK_DEVICE
    try:
        ip = ipaddress.ip_address(address.strip("[]").split("%", 1)[0])
    except ValueError:
        return address
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped:
            return str(ip.ipv4_mapped)
        return str(ipaddress.IPv6Network((ip, 64), strict=False))
    return str(ip)


def url(scheme: str, host: str, port: int, path: str = "/") -> str:
    """``scheme://host:port/path``, with an IPv6 address in brackets."""
    host = host.strip("[]")
    return f"{scheme}://{f'[{host}]' if ':' in host else host}:{port}{path}"


def host_names() -> list[str]:
    """This machine's host name, lowercased, and its mDNS ``.local`` name.

    A host name that already has a dot is used as it is; ``localhost`` gives nothing.
    """
    name = socket.gethostname().strip().lower().rstrip(".")
    if not name or name == "localhost":
        return []
    if "." in name:
        return [name]
    return [name, f"{name}.local"]


def lan_addresses() -> list[str]:
    """IPv4 and global IPv6 addresses of every interface that is up, loopback excluded.

    IPv4 addresses come first, each family in numeric order. IPv6 link-local, temporary
    (privacy) and deprecated addresses are left out.
    """
    if sys.platform.startswith("linux"):
        try:
            return _sorted(_netlink_addresses())
        except OSError:
            pass
    return _sorted(_fallback_addresses())


def _sorted(addresses: Iterable[ipaddress.IPv4Address | ipaddress.IPv6Address]) -> list[str]:
    unique = set(addresses)
    return [str(a) for a in sorted(unique, key=lambda a: (a.version, int(a)))]


def _netlink_addresses() -> Iterator[ipaddress.IPv4Address | ipaddress.IPv6Address]:
    links: dict[int, int] = {}  # ifindex -> IFF_* flags
    for payload in _dump(_RTM_GETLINK, _RTM_NEWLINK, _IFINFOMSG.pack(socket.AF_UNSPEC, 0, 0, 0, 0)):
        _family, _type, index, flags, _change = _IFINFOMSG.unpack_from(payload)
        links[index] = flags
    for payload in _dump(_RTM_GETADDR, _RTM_NEWADDR, _IFADDRMSG.pack(socket.AF_UNSPEC, 0, 0, 0, 0)):
        family, _prefix, flags, scope, index = _IFADDRMSG.unpack_from(payload)
        link_flags = links.get(index, 0)
        if not link_flags & _IFF_UP or link_flags & _IFF_LOOPBACK or scope != _RT_SCOPE_UNIVERSE:
            continue
        attrs = dict(_attributes(payload[_IFADDRMSG.size :]))
        if _IFA_FLAGS in attrs:
            flags = struct.unpack("=I", attrs[_IFA_FLAGS][:4])[0]
        if family == socket.AF_INET:
            # IFA_LOCAL is our address; IFA_ADDRESS is the peer's on point-to-point links.
            raw = attrs.get(_IFA_LOCAL, attrs.get(_IFA_ADDRESS))
            if raw is not None and len(raw) == 4:
                yield ipaddress.IPv4Address(raw)
        elif family == socket.AF_INET6 and not flags & _IFA_F_SKIP:
            raw = attrs.get(_IFA_ADDRESS)
            if raw is not None and len(raw) == 16:
                address = ipaddress.IPv6Address(raw)
                if not (address.is_link_local or address.is_loopback):
                    yield address


def _dump(request: int, reply: int, body: bytes) -> Iterator[bytes]:
    """Payloads of the ``reply`` messages a rtnetlink dump ``request`` answers with."""
    with socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, socket.NETLINK_ROUTE) as sock:
        sock.settimeout(5)
        sock.bind((0, 0))
        header = _NLMSG_HDR.pack(_NLMSG_HDR.size + len(body), request, _NLM_F_REQUEST | _NLM_F_DUMP, 1, 0)
        sock.sendall(header + body)
        while True:
            data = sock.recv(1 << 17)
            offset = 0
            while offset + _NLMSG_HDR.size <= len(data):
                length, kind, _flags, _seq, _pid = _NLMSG_HDR.unpack_from(data, offset)
                if length < _NLMSG_HDR.size:
                    raise OSError("malformed netlink message")
                if kind == _NLMSG_DONE:
                    return
                if kind == _NLMSG_ERROR:
                    (code,) = struct.unpack_from("=i", data, offset + _NLMSG_HDR.size)
                    if code:
                        raise OSError(-code, "netlink dump failed")
                elif kind == reply:
                    yield data[offset + _NLMSG_HDR.size : offset + length]
                offset += (length + 3) & ~3
            if not data:
                raise OSError("netlink socket closed")


def _attributes(data: bytes) -> Iterator[tuple[int, bytes]]:
    offset = 0
    while offset + _RTA_HDR.size <= len(data):
        length, kind = _RTA_HDR.unpack_from(data, offset)
        if length < _RTA_HDR.size:
            return
        yield kind, data[offset + _RTA_HDR.size : offset + length]
        offset += (length + 3) & ~3


def _fallback_addresses() -> Iterator[ipaddress.IPv4Address | ipaddress.IPv6Address]:
    """Best effort without rtnetlink (macOS, BSD): what the host name resolves to locally, plus
    the source address of the default route (a UDP ``connect`` sends nothing)."""
    found: list[str] = []
    with contextlib.suppress(OSError):
        found += [str(info[4][0]) for info in socket.getaddrinfo(socket.gethostname(), None)]
    for family, probe in ((socket.AF_INET, "192.0.2.1"), (socket.AF_INET6, "2001:db8::1")):
        try:
            with socket.socket(family, socket.SOCK_DGRAM) as sock:
                sock.connect((probe, 9))
                found.append(str(sock.getsockname()[0]))
        except OSError:
            pass
    for text in found:
        try:
            address = ipaddress.ip_address(text.split("%", 1)[0])
        except ValueError:
            continue
        if not (address.is_loopback or address.is_link_local or address.is_unspecified):
            yield address
