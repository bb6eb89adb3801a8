"""Running voicekiosk as a systemd service: the unit (``unit.py``), installing it (``install.py``),
and telling systemd how the service is (``notify.py``: ready, alive, stopping, a status line)."""
