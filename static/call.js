// One WebRTC session with OpenAI: mic up, the agent's voice down, events on "oai-events".
//
// boot.js opens the peer connection and does the offer/answer (in browser-SDP mode minting the
// ephemeral key while the offer is made); this carries the call on from there: failures
// explained, the connection watched, events delivered, hang-ups told (the engine says what to
// say on the channel first, and which events end the call). The offer goes out while
// the microphone prompt is still open: the mic track joins the negotiated sender when it arrives.
// What boot.js hands over (OpenedCall, Outcome, Boot) is typed once, below.

import { Problem } from "./messages.js";

/**
 * What boot.js hands the modules (call.js, session.js): the shapes are written down here, once
 * (not in boot.js, which every page inlines).
 * @typedef {object} Outcome one step of the offer/answer, as call.js explains it
 * @property {"mint" | "call" | "upstream"} step minting the key, our server, or OpenAI
 * @property {Response} [response] the HTTP answer, when there was one
 * @property {*} [error] why there was none (or why the SDP answer could not be applied)
 * @property {string} [claim] the ticket that came with the mint: the page claims its call with it
 *
 * @typedef {object} OpenedCall what openCall() returns
 * @property {RTCPeerConnection} pc
 * @property {RTCRtpSender} sender the microphone's sender, negotiated without a track
 * @property {MediaStreamTrack} remote the agent's voice
 * @property {RTCDataChannel} dc the "oai-events" channel
 * @property {Promise<Outcome>} exchange the offer/answer (answer applied when response.ok);
 *   rejects only if the offer cannot be made
 * @property {string[]} backlog events that arrived before call.js took the channel over
 * @property {Promise<void>} described the local offer is set
 * @property {() => void} abort settles every pending operation once the call is closed
 *
 * @typedef {object} Boot window.voicekioskBoot, what main.js starts from
 * @property {object} config the page config (#vk-config)
 * @property {() => OpenedCall} openCall
 * @property {MediaStreamConstraints} mic what to ask getUserMedia for
 * @property {{mic: Promise<MediaStream>, call: OpenedCall} | null} early the call boot.js started, until taken
 * @property {boolean} tapped Start was tapped before main.js loaded
 * @property {() => void} forget stop listening for that tap
 */

const CONNECT_TIMEOUT_MS = 15_000;
// `disconnected` often heals by itself (Wi-Fi roaming); give it this long before reconnecting.
const DISCONNECT_GRACE_MS = 4_000;
// A farewell unconfirmed after this long: close anyway (the server's hang-up ends it upstream too).
const FAREWELL_WAIT_MS = 2_000;

/** One call from offer to hang-up; tells its owner about events, the agent's stream and the end. */
export class Call {
  /**
   * @param {object} opts
   * @param {string} opts.callUrl the server's calls endpoint (the hang-up goes to callUrl/<id>)
   * @param {() => OpenedCall} opts.open boot.js openCall(), or the call boot.js already opened
   * @param {Promise<MediaStreamTrack>} opts.mic joins the call when it arrives
   * @param {import("./engine.js").Engine} opts.engine which events end the call; how to end it
   * @param {(event: {type: string}) => void} opts.onEvent each server event
   * @param {(stream: MediaStream) => void} opts.onTrack the agent's voice
   * @param {(problem: Problem | null) => void} opts.onEnd the call ended (null: hung up here)
   */
  constructor({ callUrl, open, mic, engine, onEvent, onTrack, onEnd }) {
    this.callUrl = callUrl;
    this.open = open;
    this.engine = engine;
    /** @type {OpenedCall | null} */
    this.opened = null;
    this.mic = mic;
    this.onEvent = onEvent;
    this.onTrack = onTrack;
    this.onEnd = onEnd;
    this.callId = null;
    this.claim = null; // browser-SDP mode: the mint's ticket, which registers the call with our server
    this.ended = false;
    this.reason = ""; // why it was hung up, for the server ("idle"), once it is
    this.endedBy = null; // the Problem that ended it, if any
    this.connectedAt = 0;
    this.pc = null;
    this.dc = null;
    this.graceTimer = 0;
    this.farewellTimer = 0;
    /** @type {import("./engine.js").Farewell | null} said, and awaited until confirmed */
    this.farewell = null;
    this.released = false; // closed here, and the server told
    this.billedSeconds = null; // the session's final count, as the farewell's confirmation gave it
  }

  /** Resolves once audio and events flow; rejects with a Problem. */
  async connect() {
    const { pc, sender, remote, dc, exchange, backlog } = (this.opened = this.open());
    this.pc = pc;
    this.dc = dc;
    dc.onmessage = (event) => this.#message(event.data);
    for (const data of backlog.splice(0)) this.#message(data);
    this.onTrack(new MediaStream([remote])); // the agent's voice: silent until it speaks

    const opened = this.#whenOpen();
    const micReady = this.mic.then((track) => !this.ended && sender.replaceTrack(track));
    // Both are awaited below, unless an earlier step fails: never an unhandled rejection.
    for (const pending of [opened, micReady]) pending.catch(() => {});
    await this.#answered(exchange);
    await Promise.all([opened, micReady]);
    this.#throwIfEnded();
    this.connectedAt = performance.now();
    this.#watch();
  }

  /**
   * Put a client event on the channel.
   * @returns {boolean} false if the call is over or its channel not open
   */
  send(event) {
    if (this.ended || this.dc?.readyState !== "open") return false;
    this.dc.send(JSON.stringify(event));
    return true;
  }

  /**
   * Hang up, once: the agent silent at once, the engine's farewell said on the channel; the peer
   * connection closes and the server is told when the farewell is confirmed (its final usage
   * reported first), after FAREWELL_WAIT_MS at most, or at once (`now`: the page is going away);
   * `reason`: why, for the server's record ("idle": nobody spoke; else the page's).
   */
  close(problem = null, { now = false, reason = "" } = {}) {
    if (this.ended) return;
    this.reason = reason;
    const farewell = this.dc?.readyState === "open" ? this.engine.farewell(this) : null;
    if (farewell) this.send(farewell.say);
    this.ended = true;
    this.endedBy = problem;
    clearTimeout(this.graceTimer);
    const { remote, abort } = this.opened ?? {};
    if (remote) remote.enabled = false; // silence: the agent may talk on until the session closes
    abort?.(); // a closing connection's pending operations would never settle
    if (farewell && !now) {
      this.farewell = farewell;
      this.farewellTimer = setTimeout(() => this.#release(), FAREWELL_WAIT_MS);
    } else {
      this.#release();
    }
    this.onEnd(problem);
  }

  /** Close the channel and the peer connection, and have the server hang up (once). */
  #release() {
    clearTimeout(this.farewellTimer);
    if (this.released) return;
    this.released = true;
    this.farewell = null;
    const { pc, dc } = this.opened ?? {};
    dc?.close();
    pc?.close();
    this.#hangUp();
  }

  /** Tell the server the call is over (it hangs up upstream), once its id is known. */
  #hangUp() {
    if (!this.callId) return; // not answered yet: #answered hangs up when the id arrives
    // With the final count, if the farewell brought one: the server's record goes with this.
    const query = new URLSearchParams();
    if (this.billedSeconds !== null) query.set("seconds", String(this.billedSeconds));
    if (this.reason) query.set("reason", this.reason);
    const tail = String(query) ? `?${query}` : "";
    fetch(`${this.callUrl}/${encodeURIComponent(this.callId)}${tail}`, { method: "DELETE", keepalive: true })
      .catch(() => {}); // the server also hangs up calls whose page went away
  }

  /**
   * Waits for boot.js's offer/answer; throws the Problem that explains a failure.
   * @param {Promise<Outcome>} exchange
   */
  async #answered(exchange) {
    let outcome;
    try {
      outcome = await exchange;
    } catch (error) {
      throw new Problem("failed", { message: String(error) }); // createOffer itself failed
    }
    const { step, response, error, claim } = outcome;
    this.claim = claim ?? null;
    const upstream = step === "upstream";
    if (response?.ok) {
      this.callId = lastSegment(response.headers.get("Location"));
      if (this.ended) this.#hangUp(); // closed while the answer was on its way
    }
    this.#throwIfEnded();
    if (error || !response) throw new Problem(response?.ok ? "dropped" : upstream ? "upstream_unreachable" : "offline");
    if (!response.ok) throw await problemFrom(response, upstream);
  }

  #whenOpen() {
    if (this.dc.readyState === "open") {
      this.engine.opened(this); // boot.js got there first
      return Promise.resolve();
    }
    if (this.dc.readyState === "closed") return Promise.reject(new Problem("dropped")); // and lost it
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => fail(new Problem("connect_timeout")), CONNECT_TIMEOUT_MS);
      const fail = (problem) => {
        clearTimeout(timer);
        reject(problem);
      };
      this.dc.onopen = () => {
        clearTimeout(timer);
        this.engine.opened(this); // first: nothing (the microphone prompt, say) holds it up
        resolve();
      };
      this.dc.onclose = () => fail(new Problem("dropped"));
      this.pc.onconnectionstatechange = () => {
        if (this.pc.connectionState === "failed") fail(new Problem("dropped"));
      };
    });
  }

  #watch() {
    const { pc, dc } = this;
    dc.onclose = () => (this.ended ? this.#release() : this.close(new Problem("dropped")));
    pc.onconnectionstatechange = () => {
      const state = pc.connectionState;
      if (state === "connected") {
        clearTimeout(this.graceTimer);
        this.graceTimer = 0;
      } else if (state === "failed" || state === "closed") {
        this.close(new Problem("dropped"));
      } else if (state === "disconnected" && !this.graceTimer) {
        this.graceTimer = setTimeout(() => this.close(new Problem("dropped")), DISCONNECT_GRACE_MS);
      }
    };
  }

  #message(data) {
    let event;
    try {
      event = JSON.parse(data);
    } catch {
      return;
    }
    if (!event || typeof event.type !== "string") return;
    if (this.ended) {
      if (event.type !== this.farewell?.until) return;
      this.billedSeconds = this.farewell.confirmed?.(event) ?? null;
      this.#release();
      return;
    }
    this.onEvent(event);
    const problem = this.engine.ends(event);
    if (problem) this.close(problem);
  }

  #throwIfEnded() {
    if (this.ended) throw this.endedBy ?? new Problem("stopped", { retry: false });
  }
}

/** A failed HTTP answer as a Problem: our JSON error's code, or (from OpenAI) its status. */
async function problemFrom(response, upstream) {
  const status = response.status;
  const retryAfterMs = (Number(response.headers.get("Retry-After")) || 0) * 1000;
  if (upstream) {
    // Straight from OpenAI: map its status to our codes rather than show its text.
    const code = status === 401 || status === 403 ? "upstream_auth" : status === 429 ? "upstream_rate_limited" : "upstream_error";
    return new Problem(code, { status, retryAfterMs });
  }
  let code = "";
  let message = "";
  try {
    const body = await response.json();
    code = body?.error?.code || "";
    message = body?.error?.message || "";
  } catch {
    // not JSON: the status decides
  }
  if (status === 401) code = "unauthorized";
  return new Problem(code || `http_${status}`, { message, status, retryAfterMs });
}

function lastSegment(location) {
  return location ? decodeURIComponent(location.split("/").filter(Boolean).pop() || "") || null : null;
}
