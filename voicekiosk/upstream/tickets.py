"""Claim tickets: what lets a page in browser-SDP mode register a call it started itself.

In ``--sdp browser`` mode the page posts its offer to OpenAI with an ephemeral key, so this
server learns of the call only when the page claims it over ``/api/events``. Each mint comes
with one ticket; a claim for a call the server does not know must carry an unspent, unexpired
ticket. A page can therefore hold no more calls than it was given keys for, and a socket that
sprays made-up call ids registers none of them.
"""

from __future__ import annotations

import secrets
import time

MAX_TICKETS = 10_000  # bounded memory whatever the clients do


class ClaimTickets:
    """One-use tickets, each valid for ``ttl`` seconds (the ephemeral key's life).

    Args:
      ttl: seconds a ticket can be redeemed after it is issued.
    """

    def __init__(self, ttl: float) -> None:
        self.ttl = ttl
        self._expiry: dict[str, float] = {}

    def __len__(self) -> int:
        return len(self._expiry)

    def issue(self) -> str:
        """A new ticket, to be handed to the page along with its mint."""
        now = time.monotonic()
        if len(self._expiry) >= MAX_TICKETS:
            self._expiry = {t: at for t, at in self._expiry.items() if at > now}
            while len(self._expiry) >= MAX_TICKETS:  # all still valid: the oldest go first
                del self._expiry[next(iter(self._expiry))]
        ticket = secrets.token_urlsafe(18)
        self._expiry[ticket] = now + self.ttl
        return ticket

    def redeem(self, ticket: object) -> bool:
        """Spend ``ticket``: True once for a ticket issued here and not yet expired."""
        if not isinstance(ticket, str):
            return False
        expiry = self._expiry.pop(ticket, None)
        return expiry is not None and expiry > time.monotonic()
