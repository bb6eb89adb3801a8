// One WebRTC session with the Realtime API: mic up, the agent's voice down, events on "oai-events".
//
// Connecting is done in parallel wherever the steps allow: the offer is made and posted while the
// microphone prompt is still open (the mic track joins the already negotiated sender when it
// arrives), and in browser-SDP mode the ephemeral key is minted while the offer is created.

import { Problem } from "./messages.js";

const CONNECT_TIMEOUT_MS = 15_000;
// `disconnected` often heals by itself (Wi-Fi roaming); give it this long before reconnecting.
const DISCONNECT_GRACE_MS = 4_000;
// Server errors after which the session cannot go on.
const FATAL_CODES = new Set(["session_expired", "session_expired_error", "invalid_session"]);

export class Call {
  /**
   * @param {object} config the page config (/api/config)
   * @param {{mic: Promise<MediaStreamTrack>, onEvent: Function, onTrack: Function, onEnd: Function}} opts
   */
  constructor(config, { mic, onEvent, onTrack, onEnd }) {
    this.config = config;
    this.mic = mic;
    this.onEvent = onEvent;
    this.onTrack = onTrack;
    this.onEnd = onEnd;
    this.callId = null;
    this.ended = false;
    this.connectedAt = 0;
    this.pc = null;
    this.dc = null;
    this.graceTimer = 0;
  }

  /** Resolves once audio and events flow; rejects with a Problem. */
  async connect() {
    const pc = (this.pc = new RTCPeerConnection()); // no STUN/TURN: OpenAI offers public host candidates
    const sender = pc.addTransceiver("audio", { direction: "sendrecv" }).sender;
    const dc = (this.dc = pc.createDataChannel("oai-events"));
    pc.ontrack = (event) => this.onTrack(event.streams[0] ?? new MediaStream([event.track]));
    dc.onmessage = (event) => this.#message(event.data);

    const opened = this.#whenOpen();
    const micReady = this.mic.then((track) => !this.ended && sender.replaceTrack(track));
    const key = this.config.sdp === "browser" ? mintKey(this.config.token_url) : null;
    // All three are awaited below, unless an earlier step fails: never an unhandled rejection.
    for (const pending of [opened, micReady, key]) pending?.catch(() => {});
    const offer = await pc.createOffer();
    await pc.setLocalDescription(offer);
    const answer = key ? await this.#postToOpenAI(offer.sdp, await key) : await this.#postToServer(offer.sdp);
    this.#throwIfEnded();
    await pc.setRemoteDescription({ type: "answer", sdp: answer });
    await Promise.all([opened, micReady]);
    this.#throwIfEnded();
    this.connectedAt = performance.now();
    this.#watch();
  }

  /** Send a client event on the data channel (dropped if it is not open). */
  send(event) {
    if (this.dc?.readyState === "open") this.dc.send(JSON.stringify(event));
  }

  /** Hang up: close the peer connection and tell the server, once. */
  close(problem = null) {
    if (this.ended) return;
    this.ended = true;
    clearTimeout(this.graceTimer);
    this.dc?.close();
    this.pc?.close();
    if (this.callId) {
      fetch(`${this.config.call_url}/${encodeURIComponent(this.callId)}`, {
        method: "DELETE",
        keepalive: true,
      }).catch(() => {}); // the server also hangs up calls whose page went away
    }
    this.onEnd(problem);
  }

  async #postToServer(sdp) {
    const response = await request(this.config.call_url, {
      method: "POST",
      headers: { "Content-Type": "application/sdp" },
      body: sdp,
    });
    this.callId = lastSegment(response.headers.get("Location"));
    return response.text();
  }

  async #postToOpenAI(sdp, key) {
    // Only Authorization and Content-Type: OpenAI's CORS preflight allows no custom header.
    const response = await request(key.calls_url, {
      method: "POST",
      headers: { Authorization: `Bearer ${key.value}`, "Content-Type": "application/sdp" },
      body: sdp,
      upstream: true,
    });
    this.callId = lastSegment(response.headers.get("Location"));
    return response.text();
  }

  #whenOpen() {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => fail(new Problem("connect_timeout")), CONNECT_TIMEOUT_MS);
      const fail = (problem) => {
        clearTimeout(timer);
        reject(problem);
      };
      this.dc.onopen = () => {
        clearTimeout(timer);
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
    dc.onclose = () => this.close(new Problem("dropped"));
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
    this.onEvent(event);
    if (event.type === "error" && isFatal(event.error)) this.close(new Problem("session_ended"));
  }

  #throwIfEnded() {
    if (this.ended) throw new Problem("stopped", { retry: false });
  }
}

function isFatal(error) {
  if (!error) return false;
  return FATAL_CODES.has(error.code) || /maximum duration/i.test(error.message || "");
}

async function mintKey(url) {
  const response = await request(url, { method: "POST" });
  return response.json();
}

/** fetch() that turns every failure into a Problem the page can explain. */
async function request(url, { upstream = false, ...init }) {
  let response;
  try {
    response = await fetch(url, { cache: "no-store", ...init });
  } catch {
    throw new Problem(upstream ? "upstream_unreachable" : "offline");
  }
  if (response.ok) return response;
  const retryAfterMs = (Number(response.headers.get("Retry-After")) || 0) * 1000;
  let code = "";
  let message = "";
  try {
    const body = await response.json();
    code = body?.error?.code || "";
    message = body?.error?.message || "";
  } catch {
    // not JSON: the status decides
  }
  if (upstream) {
    // Straight from OpenAI: map its status to our codes rather than show its text.
    const status = response.status;
    code = status === 401 || status === 403 ? "upstream_auth" : status === 429 ? "upstream_rate_limited" : "upstream_error";
    message = "";
  } else if (response.status === 401) {
    code = "unauthorized";
  }
  throw new Problem(code || `http_${response.status}`, { message, status: response.status, retryAfterMs });
}

function lastSegment(location) {
  return location ? decodeURIComponent(location.split("/").filter(Boolean).pop() || "") || null : null;
}
