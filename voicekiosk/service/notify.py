"""``sd_notify`` without a dependency: datagrams to systemd's ``NOTIFY_SOCKET`` (``Type=notify``).

``READY=1`` once the server listens, ``WATCHDOG=1`` from the event loop every half of
``WatchdogSec`` (a stuck loop stops them, and systemd restarts the service), ``STOPPING=1``,
and a ``STATUS=`` line. Without ``NOTIFY_SOCKET`` (not under systemd) every call does nothing.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
from collections.abc import Callable, MutableMapping

from voicekiosk.upstream.record import CallRecord, EndReason

log = logging.getLogger("voicekiosk.service")
VARIABLES = ("NOTIFY_SOCKET", "WATCHDOG_USEC", "WATCHDOG_PID")


class Systemd:
    """The service manager, as a ``Type=notify`` service talks to it.

    Args:
      address: the notify socket (a path, or an abstract name starting with ``@``); None: not
        under systemd.
      watchdog: seconds between ``WATCHDOG=1`` pings (None: no watchdog).
    """

    def __init__(self, address: str | None, watchdog: float | None = None) -> None:
        self.address = "\0" + address[1:] if address and address.startswith("@") else address
        self.watchdog = watchdog if address else None
        self._failed = False

    @classmethod
    def from_environ(cls, environ: MutableMapping[str, str] | None = None) -> Systemd:
        """Read (and remove, so no child of ours takes them for its own) systemd's variables."""
        environ = os.environ if environ is None else environ
        address, usec, pid = (environ.pop(name, "") for name in VARIABLES)
        watchdog = None
        if usec.isdigit() and int(usec) > 0 and (not pid or pid == str(os.getpid())):
            watchdog = int(usec) / 2e6  # half of WatchdogSec, as systemd advises
        return cls(address or None, watchdog)

    def notify(self, *lines: str) -> bool:
        """Send ``lines`` (``KEY=value``) in one datagram; False if there is nobody to tell."""
        if not self.address:
            return False
        message = "\n".join(line.replace("\n", " ") for line in lines).encode()
        try:
            with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC) as sock:
                sock.sendto(message, self.address)
        except OSError as exc:
            if not self._failed:  # said once: the service runs on without its manager's news
                log.warning("cannot tell systemd (%s): %s", self.address.lstrip("\0"), exc.strerror or exc)
            self._failed = True
            return False
        return True

    async def keep_alive(self) -> None:
        """Ping the watchdog from the event loop until cancelled (returns at once without one)."""
        if self.watchdog is None:
            return
        while True:
            self.notify("WATCHDOG=1")
            await asyncio.sleep(self.watchdog)


class StatusLine:
    """Keeps systemd's ``STATUS=`` current as calls start and end (a ``CallObserver``).

    Args:
      systemd: where the line goes.
      serving: what the server does ("serving https://…:8116").
      count: how many calls run now.
    """

    def __init__(self, systemd: Systemd, serving: str, count: Callable[[], int]) -> None:
        self.systemd = systemd
        self.serving = serving
        self.count = count

    @property
    def text(self) -> str:
        calls = self.count()
        return f"{self.serving}, {calls} call{'' if calls == 1 else 's'}"

    def update(self, *lines: str) -> None:
        self.systemd.notify(*lines, f"STATUS={self.text}")

    def call_started(self, record: CallRecord) -> None:
        self.update()

    def call_ended(self, record: CallRecord, reason: EndReason) -> None:
        self.update()
