"""The Chrome/Chromium-family browsers this machine may have: the kiosk launches one, and
``voicekiosk trust`` adds the CA to the certificate database they share."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from voicekiosk.errors import StartupError

BROWSERS = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable", "chrome", "microsoft-edge")
MAC_BROWSERS = (
    "/Applications/Google Chrome.app/Contents/MacOS/Google Chrome",
    "/Applications/Chromium.app/Contents/MacOS/Chromium",
)


def find_browser(configured: str | None) -> str:
    """The Chrome/Chromium to launch: ``configured`` (``--browser``) if given, else the first installed.

    Raises:
      StartupError: none can be found.
    """
    if configured:
        found = shutil.which(configured) or (configured if Path(configured).is_file() else None)
        if not found or not os.access(found, os.X_OK):
            raise StartupError(f"--browser: {configured} is not an executable browser")
        return found
    for name in BROWSERS:
        if path := shutil.which(name):
            return path
    for path in MAC_BROWSERS:
        if Path(path).is_file():
            return path
    raise StartupError(
        "No Chrome or Chromium found. Install one (Debian/Raspberry Pi OS: sudo apt install chromium) "
        "or point --browser at it."
    )
