"""Driving Debian's Chromium with Playwright, on loopback only, with a fake microphone.

The flags and their reasons are in ../shared/docs/browser-testing.md. Shared by the browser
tests and ``make bench``.
"""

from __future__ import annotations

import bisect
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

from tests.helpers import require_loopback_only, wait_for

CHROMIUM = Path(os.environ.get("VOICEKIOSK_TEST_CHROMIUM", "/usr/bin/chromium"))
ARTIFACTS = Path(__file__).parent / "artifacts"
LOOPBACK_HOSTS = {"127.0.0.1", "localhost", "::1"}

# Playwright passes its own --disable-features list and Chromium keeps only the last one: ours
# must repeat it. Read from the installed Playwright so the two never drift apart.
_FALLBACK_DISABLED = (
    "AvoidUnnecessaryBeforeUnloadCheckSync,DestroyProfileOnBrowserClose,HttpsUpgrades,"
    "HttpsFirstBalancedModeAutoEnable,LensOverlay,MediaRouter,PaintHolding,ThirdPartyStoragePartitioning,"
    "AvoidCorsURLLoaderRestartOnRedirect,OptimizationHints,NetworkTimeServiceQuerying,AimEnabled,PreconnectToSearch"
)


def require_isolated_browser() -> None:
    """Skip (fail, in CI) unless Chromium is here and loopback is the only network."""
    if not CHROMIUM.exists():
        problem = f"{CHROMIUM} is missing (sudo apt-get install chromium)"
        if os.environ.get("CI"):
            pytest.fail(problem)
        pytest.skip(problem)
    # Outside a private namespace Chromium would gather (and try) this machine's LAN addresses.
    require_loopback_only("a browser test")


def playwright_disabled_features() -> str:
    import playwright

    bundle = Path(playwright.__file__).parent / "driver/package/lib/coreBundle.js"
    try:
        source = bundle.read_text(encoding="utf-8")
    except OSError:
        return _FALLBACK_DISABLED
    match = re.search(r"disabledFeatures = \[(.*?)\]\.filter", source, re.S)
    if not match:
        return _FALLBACK_DISABLED
    names = re.findall(r'^\s*"([A-Za-z0-9]+)"', match.group(1), re.M)
    return ",".join(names) or _FALLBACK_DISABLED


def chromium_args(
    *,
    mic_wav: Path | None = None,
    spki: str | None = None,
    resolve: dict[str, str] | None = None,
    exclude: list[str] | None = None,
) -> list[str]:
    """Flags for a headless Chromium that talks to loopback (and ``exclude``'s addresses, IPv6 ones
    without brackets) only."""
    rules = [f"MAP {name} {address}" for name, address in (resolve or {}).items()]
    # MAP * also maps IP literals. An IPv6 one is excluded written bare: "EXCLUDE [::1]" matches
    # nothing, and https://[::1]/ fails with ERR_NAME_NOT_RESOLVED (Chromium 156).
    rules += ["MAP * ~NOTFOUND", "EXCLUDE localhost", "EXCLUDE 127.0.0.1", "EXCLUDE ::1"]
    rules += [f"EXCLUDE {address}" for address in exclude or []]
    args = [
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--disable-domain-reliability",
        "--disable-client-side-phishing-detection",
        "--no-pings",
        "--autoplay-policy=no-user-gesture-required",
        "--allow-loopback-in-peer-connection",
        f"--disable-features=WebRtcHideLocalIpsWithMdns,{playwright_disabled_features()}",
        "--host-resolver-rules=" + " , ".join(rules),
    ]
    if mic_wav:
        args += [
            "--use-fake-ui-for-media-stream",
            "--use-fake-device-for-media-stream",
            f"--use-file-for-fake-audio-capture={mic_wav}",
        ]
    if spki:
        args.append(f"--ignore-certificate-errors-spki-list={spki}")
    return args


# Installed before the page's own scripts: records every peer connection, every data-channel
# event with its time (and the first 5000 messages' text), every (un)muting of a media element,
# every Screen Wake Lock asked for (and whether it was granted), and samples the agent's received
# audio energy every 20 ms.
PROBE = """
(() => {
  const probe = (window.__probe = {
    pcs: [], events: [], raw: [], energy: [], connected: null, muted: [], states: [], wakeLocks: [], sentinels: [],
  });
  if (window.WakeLock) {
    const request = WakeLock.prototype.request;
    WakeLock.prototype.request = function (type) {
      const asked = { t: performance.now(), type, granted: null };
      probe.wakeLocks.push(asked);
      const lock = request.call(this, type);
      lock.then((sentinel) => probe.sentinels.push(sentinel) && (asked.granted = true), () => (asked.granted = false));
      return lock;
    };
  }
  // Every state the page passes through, however briefly (a reconnect with no back-off is one
  // task long: no poll would see it).
  new MutationObserver((changes) => {
    for (const c of changes) probe.states.push(c.target.dataset.state);
  }).observe(document, { subtree: true, attributes: true, attributeFilter: ["data-state"] });
  const muted = Object.getOwnPropertyDescriptor(HTMLMediaElement.prototype, "muted");
  Object.defineProperty(HTMLMediaElement.prototype, "muted", {
    ...muted,
    set(value) {
      probe.muted.push({ t: performance.now(), muted: Boolean(value) });
      muted.set.call(this, value);
    },
  });
  const Native = window.RTCPeerConnection;
  window.RTCPeerConnection = class extends Native {
    constructor(...args) {
      super(...args);
      probe.pcs.push(this);
      this.addEventListener("connectionstatechange", () => {
        if (this.connectionState === "connected") probe.connected ??= performance.now();
      });
      const create = this.createDataChannel.bind(this);
      this.createDataChannel = (label, options) => {
        const channel = create(label, options);
        channel.addEventListener("message", (e) => {
          if (probe.raw.length < 5000) probe.raw.push(String(e.data)); // every message, as received
          try { probe.events.push({ t: performance.now(), type: JSON.parse(e.data).type }); } catch {}
        });
        return channel;
      };
    }
  };
  setInterval(async () => {
    const pc = probe.pcs[probe.pcs.length - 1];
    if (!pc || pc.connectionState !== "connected") return;
    const stats = await pc.getStats();
    for (const s of stats.values()) {
      if (s.type === "inbound-rtp" && s.kind === "audio") {
        probe.energy.push({ t: performance.now(), e: s.totalAudioEnergy || 0 });
        if (probe.energy.length > 3000) probe.energy.splice(0, 1000);
      }
    }
  }, 20);
})();
"""


@dataclass
class PageWatch:
    """What a page did that a test must check: console errors and every URL it asked for."""

    errors: list[str] = field(default_factory=list)
    urls: list[str] = field(default_factory=list)

    def foreign_urls(self) -> list[str]:
        return [u for u in self.urls if urlsplit(u).scheme in ("http", "https", "ws", "wss") and not _loopback(u)]


def _loopback(url: str) -> bool:
    host = urlsplit(url).hostname or ""
    return host in LOOPBACK_HOSTS or host.endswith(".test")  # *.test: mapped to 127.0.0.1 by us


async def open_page(context: Any, url: str, *, probe: bool = True) -> tuple[Any, PageWatch]:
    watch = PageWatch()
    page = await context.new_page()
    page.on("console", lambda m: m.type == "error" and watch.errors.append(m.text))
    page.on("pageerror", lambda e: watch.errors.append(f"uncaught: {e}"))
    page.on("request", lambda r: watch.urls.append(r.url))
    page.on("websocket", lambda ws: watch.urls.append(ws.url))
    if probe:
        await page.add_init_script(PROBE)
    await page.goto(url)
    return page, watch


async def state(page: Any) -> str:
    return str(await page.evaluate("document.querySelector('main').dataset.state"))


async def state_count(page: Any) -> int:
    """How many state changes the page has made so far (for ``wait_state(since=...)``)."""
    return int(await page.evaluate("window.__probe.states.length"))


async def wait_state(page: Any, *states: str, timeout: float = 15.0, since: int | None = None) -> str:
    """Wait until the page is in one of ``states``; with ``since`` (a ``state_count``), until it
    has passed through one of them since then, however briefly."""
    seen: list[str] = []

    async def check() -> str | None:
        if since is not None:
            passed = await page.evaluate(f"window.__probe.states.slice({since})")
            seen[:] = passed
            return next((s for s in passed if s in states), None)
        current = await state(page)
        if not seen or seen[-1] != current:
            seen.append(current)
        return current if current in states else None

    try:
        return str(await wait_for(check, timeout=timeout, what=f"state in {states}"))
    except AssertionError as exc:
        raise AssertionError(f"{exc}; states seen: {seen}") from None


async def problem_title(page: Any) -> str:
    """The title of the problem the page shows ('' when it shows none)."""
    return str(
        await page.evaluate(
            "document.getElementById('problem').hidden ? '' : document.getElementById('problem-title').textContent"
        )
    )


async def audio_energy(page: Any) -> float:
    """Total energy of the agent's audio received so far (inbound-rtp totalAudioEnergy)."""
    return float(await page.evaluate("(window.__probe.energy.at(-1) || {e: 0}).e"))


async def ice_addresses(page: Any) -> set[str]:
    """Addresses of both ends of every ICE candidate the newest peer connection knows."""
    return set(
        await page.evaluate(
            """async () => {
              const pc = window.__probe.pcs.at(-1);
              const out = [];
              for (const s of (await pc.getStats()).values()) {
                if (s.type === "local-candidate" || s.type === "remote-candidate") out.push(s.address || s.ip);
              }
              return out;
            }"""
        )
    )


def silence_after(samples: list[dict], t0: float, window: float = 200.0) -> float:
    """Milliseconds from ``t0`` until the agent's received audio goes quiet.

    Quiet: over the next ``window`` ms it gains under 5 % of the energy it gained in the
    ``window`` ms before ``t0``. (Chromium refreshes getStats about every 60 ms.)
    """
    times = [s["t"] for s in samples]
    energy = [s["e"] for s in samples]

    def at(t: float) -> float:
        i = bisect.bisect_left(times, t)
        if i == 0:
            return energy[0]
        if i >= len(times):
            return energy[-1]
        t1, t2, e1, e2 = times[i - 1], times[i], energy[i - 1], energy[i]
        return e1 + (e2 - e1) * (t - t1) / max(1e-6, t2 - t1)

    speaking = at(t0) - at(t0 - window)
    assert speaking > 0, "the agent was not audible before the barge-in"
    for step in range(0, 1000, 10):
        t = t0 + step
        if at(t + window) - at(t) < 0.05 * speaking:
            return float(step)
    raise AssertionError("the agent never went quiet")
