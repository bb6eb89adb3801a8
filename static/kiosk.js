// A screen nobody tends. It stays awake (Screen Wake Lock, asked for again whenever the page is
// shown again: browsers drop it while a page is hidden). In kiosk mode (config.kiosk: `voicekiosk
// kiosk` opens the page with ?kiosk) the cursor hides when the mouse rests, and the context menu
// is refused (selection and zoom: the template's `.kiosk` class and viewport, style.css). With
// `dim_after` (minutes; 0: never) the attract screen, untouched that long, dims under a dark
// veil (the invitation still shows through) until a touch or a voice wakes it.

const CURSOR_MS = 3000; // the cursor hides after this long without moving

/** The page's kiosk behaviours; `idle(shown)` tells it when the attract screen shows or goes. */
export class Kiosk {
  /**
   * @param {{kiosk?: boolean, dim_after?: number}} config the page config
   * @param {HTMLElement} veil the dimming veil (the template's #veil)
   */
  constructor(config, veil) {
    this.veil = veil;
    this.dimAfterMs = Math.max(0, Number(config.dim_after) || 0) * 60_000;
    this.timers = { dim: 0, cursor: 0 };
    this.inviting = false;
    /** @type {WakeLockSentinel | null} */
    this.lock = null;
    this.asking = false;
    this.#keepAwake();
    document.addEventListener("visibilitychange", () => this.#keepAwake());
    // Any touch, click or key: the screen wakes (and dims again after a while, if still idle).
    for (const kind of ["pointerdown", "keydown"]) addEventListener(kind, () => this.#armDim(), { passive: true, capture: true });
    if (config.kiosk) this.#kioskMode();
  }

  /** The attract screen appeared (true) or went (false: a conversation, a problem). */
  idle(shown) {
    this.inviting = shown;
    this.#armDim();
  }

  /** Hold the screen awake while the page is visible (a hidden page loses its lock). */
  async #keepAwake() {
    if (!navigator.wakeLock || document.visibilityState !== "visible") return;
    if (this.asking || (this.lock && !this.lock.released)) return;
    this.asking = true;
    try {
      this.lock = await navigator.wakeLock.request("screen");
    } catch {
      // Refused (power saving, a browser without it here): the display's own settings rule.
    } finally {
      this.asking = false;
    }
  }

  /** Undimmed now; dims after dimAfterMs if the attract screen stays, untouched, that long. */
  #armDim() {
    clearTimeout(this.timers.dim);
    this.veil.classList.remove("dimmed");
    if (this.inviting && this.dimAfterMs > 0) {
      this.timers.dim = setTimeout(() => this.veil.classList.add("dimmed"), this.dimAfterMs);
    }
  }

  #kioskMode() {
    document.addEventListener("contextmenu", (event) => event.preventDefault());
    const root = document.documentElement;
    const hide = () => root.classList.add("no-cursor");
    addEventListener(
      "pointermove",
      (event) => {
        if (event.pointerType !== "mouse") return;
        root.classList.remove("no-cursor");
        clearTimeout(this.timers.cursor);
        this.timers.cursor = setTimeout(hide, CURSOR_MS);
      },
      { passive: true },
    );
    this.timers.cursor = setTimeout(hide, CURSOR_MS);
  }
}
