"""What the local CA may vouch for: X.509 name constraints that keep a stolen CA key useless
for any site but this kiosk.

Everyone who trusts the CA trusts it for the names and addresses written into it, and for
nothing else: ``localhost``, this machine's names (``kiosk.local``, or its full name if it has
one), ``home.arpa`` (RFC 8375's home-network domain), the names given with ``--san`` when the CA
was made, and the private and local address ranges a kiosk is reached on. A name permits every
name below it, so a single-label name is never written in: ``cafe`` or ``museum`` would permit
a whole public top-level domain. A leaf for ``www.google.com`` or a public address, signed with
the key, fails verification on every device.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable

from cryptography import x509

IpNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

LOCAL_DOMAINS = ("localhost", "home.arpa")
LOCAL_NETWORKS: tuple[IpNetwork, ...] = tuple(
    ipaddress.ip_network(text)
    for text in (
        "127.0.0.0/8",  # loopback
        "10.0.0.0/8",  # private (RFC 1918)
        "172.16.0.0/12",
        "192.168.0.0/16",
        "169.254.0.0/16",  # link-local
        "100.64.0.0/10",  # carrier-grade NAT, and tailnets
        "::1/128",  # loopback
        "fc00::/7",  # unique local
        "fe80::/10",  # link-local
    )
)


def name_constraints(identities: Iterable[str]) -> x509.NameConstraints:
    """Permit the local domains and networks, plus ``identities`` (canonical names and addresses:
    this machine's names, ``--host``, ``--san``); an address outside the local networks is
    permitted on its own (a /32 or /128), never its network."""
    domains = list(LOCAL_DOMAINS)
    networks = list(LOCAL_NETWORKS)
    for identity in identities:
        address = _address(identity)
        if address is None:
            if single_label(identity):
                continue  # it would permit a top-level domain (a machine called "cafe": *.cafe)
            if not _covered_name(identity, domains):
                domains.append(identity)
        elif not any(address in network for network in networks):
            networks.append(ipaddress.ip_network(address))
    subtrees: list[x509.GeneralName] = [x509.DNSName(d) for d in domains]
    subtrees += [x509.IPAddress(n) for n in networks]
    return x509.NameConstraints(permitted_subtrees=subtrees, excluded_subtrees=None)


def single_label(name: str) -> bool:
    """A DNS name without a dot (``kiosk``): as a constraint it would permit a top-level domain."""
    return "." not in name and _address(name) is None


def permitted(ca: x509.Certificate) -> tuple[list[str], list[IpNetwork]] | None:
    """The CA's permitted DNS names and networks; None for a CA without name constraints."""
    try:
        constraints = ca.extensions.get_extension_for_class(x509.NameConstraints).value
    except x509.ExtensionNotFound:
        return None
    subtrees = constraints.permitted_subtrees or []
    names = [str(s.value) for s in subtrees if isinstance(s, x509.DNSName)]
    networks = [s.value for s in subtrees if isinstance(s, x509.IPAddress) and isinstance(s.value, IpNetwork)]
    return names, networks


def vouches_for(ca: x509.Certificate, identity: str) -> bool:
    """Whether a certificate for ``identity`` (a canonical name or address) issued by ``ca``
    would verify: always for an unconstrained CA, else only inside its permitted subtrees."""
    allowed = permitted(ca)
    if allowed is None:
        return True
    names, networks = allowed
    address = _address(identity)
    if address is None:
        return _covered_name(identity, names)
    return any(address in network for network in networks)


def describe(ca: x509.Certificate) -> str:
    """One line for people: what the CA may vouch for."""
    allowed = permitted(ca)
    if allowed is None:
        return "anything (made without name constraints: `voicekiosk cert rotate` makes a safer one)"
    names, networks = allowed
    return ", ".join([*names, *(str(n) for n in networks)])


def _address(identity: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        return ipaddress.ip_address(identity)
    except ValueError:
        return None


def _covered_name(name: str, domains: Iterable[str]) -> bool:
    """RFC 5280 dNSName matching: the name itself or any name below it."""
    return any(name == domain or name.endswith("." + domain) for domain in domains)
