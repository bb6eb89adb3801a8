// Tells the server what happens (transcripts, turn timings, usage) over a same-origin WebSocket,
// so the terminal shows the conversation. Bounded and non-blocking: it never slows the call.
// The server's own news about a call (a tool runs, show this, end the call) comes back on it.
// The kiosk's page (`voicekiosk kiosk` opens it with ?kiosk) also beats on it from its main thread:
// a page that hangs stops beating, and the kiosk restarts its browser.

const MAX_QUEUE = 100;
const MAX_BUFFERED = 64 * 1024;
const BEAT_MS = 10_000; // the kiosk restarts a page silent for 30 s (voicekiosk/kiosk.py)

export class Reporter {
  /**
   * @param {string} url the events socket's path
   * @param {{kiosk?: boolean}} options kiosk: this is the kiosk's own page (it beats)
   */
  constructor(url, { kiosk = false } = {}) {
    this.url = new URL(url, location.href);
    this.url.protocol = location.protocol === "https:" ? "wss:" : "ws:";
    this.kiosk = kiosk;
    if (kiosk) this.url.searchParams.set("kiosk", "");
    this.queue = [];
    this.socket = null;
    this.retryMs = 1000;
    this.claims = new Map(); // calls this page owns, with their mint's ticket: re-announced after every reconnect
    this.started = false;
    /** @type {(event: {type: string, call_id?: string}) => void} what the server says */
    this.onServerEvent = () => {};
  }

  /** Hear what the server says about the page's calls (one listener). */
  listen(handler) {
    this.onServerEvent = handler;
  }

  /** Connect (once). Called after the first call attempt, so it never delays connecting. */
  start() {
    if (this.started) return;
    this.started = true;
    this.#open();
    if (!this.kiosk) return;
    setInterval(() => this.#beat(), BEAT_MS);
    document.addEventListener("visibilitychange", () => this.#beat());
  }

  /** "Still here", from the main thread, only while connected (a missed beat is not queued).
   * Hidden, a page's timers may be held to one a minute: it says so, and is given longer. */
  #beat() {
    const beat = { type: "alive", hidden: document.hidden };
    if (this.socket?.readyState === WebSocket.OPEN) this.socket.send(JSON.stringify(beat));
  }

  send(event) {
    const socket = this.socket;
    if (socket?.readyState === WebSocket.OPEN && socket.bufferedAmount < MAX_BUFFERED) {
      socket.send(JSON.stringify(event));
      return;
    }
    if (this.queue.length >= MAX_QUEUE) this.queue.shift(); // the oldest news matters least
    this.queue.push(event);
  }

  claim(callId, ticket = null) {
    this.claims.set(callId, ticket);
    // Not yet open: onopen announces every claim (queueing it too would send it twice).
    if (this.socket?.readyState === WebSocket.OPEN) this.#announce(this.socket, callId, ticket);
  }

  release(callId) {
    this.claims.delete(callId);
  }

  #announce(socket, callId, ticket) {
    socket.send(JSON.stringify({ type: "call", call_id: callId, claim: ticket }));
  }

  #open() {
    let socket;
    try {
      socket = new WebSocket(this.url);
    } catch {
      return;
    }
    this.socket = socket;
    socket.onopen = () => {
      this.retryMs = 1000;
      for (const [callId, ticket] of this.claims) this.#announce(socket, callId, ticket);
      const pending = this.queue.splice(0);
      for (const event of pending) socket.send(JSON.stringify(event));
      if (this.kiosk) this.#beat();
    };
    socket.onclose = () => {
      this.socket = null;
      setTimeout(() => this.#open(), this.retryMs);
      // While a call is ours, come back well within the server's grace, or it hangs the call up;
      // a kiosk's page comes back well within the silence after which its browser is restarted.
      this.retryMs = Math.min(this.claims.size || this.kiosk ? 4_000 : 30_000, this.retryMs * 2);
    };
    socket.onerror = () => {}; // onclose follows and retries
    socket.onmessage = (message) => {
      let event;
      try {
        event = JSON.parse(message.data);
      } catch {
        return;
      }
      if (event && typeof event.type === "string") this.onServerEvent(event);
    };
  }
}
