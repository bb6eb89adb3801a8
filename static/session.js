// The conversation's life: connect, back off and reconnect after a failure, pause when nobody
// talks (and wake on a voice), and rotate sessions before OpenAI's time limit ends them. What the
// voice API's events mean is its Engine's (realtime.js, live.js; the interface: engine.js).
// What the server says about the call (a tool runs, show this, end it) is news.js's; its triggers
// for every page (/api/start, /api/stop, /api/announce) are triggers.js's.

import { Backoff, STABLE_MS } from "./backoff.js";
import { Call } from "./call.js";
import { Problem, explain } from "./messages.js";
import { Microphone } from "./mic.js";
import { CallNews } from "./news.js";
import { Triggers } from "./triggers.js";
import { SPEECH_RMS } from "./visualizer.js";

// A paused kiosk wakes when its microphone hears speech near it (SPEECH_RMS) for WAKE_MS.
const WAKE_MS = 300;
// Calls made upstream that never connected (the network blocks the media, say): each may be
// billed (GPT-Live bills 15 s a session), so after UNJOINED_LIMIT in a row, try only this often.
const UNJOINED_LIMIT = 3;
const UNJOINED_RETRY_MS = 5 * 60_000;
const BUDGET_RETRY_MS = 15 * 60_000; // closed for today: a kiosk that starts by itself asks again this often

/** @typedef {import("./engine.js").Engine} Engine */

/** One state machine for the page: which call runs, what state it is in, and what comes next. */
export class Session {
  /**
   * @param {Boot} boot window.voicekioskBoot (typedef in call.js)
   * @param {{view: import("./view.js").View, reporter: import("./reporter.js").Reporter,
   *   engine: Engine, hours: import("./hours.js").Hours}} parts
   */
  constructor(boot, { view, reporter, engine, hours }) {
    this.boot = boot;
    this.config = boot.config;
    this.view = view;
    this.reporter = reporter;
    this.engine = engine;
    this.hours = hours; // closed: no call (no microphone, no offer)
    this.microphone = new Microphone(boot.mic, () => view.meters.hide("you"));
    this.backoff = new Backoff();
    this.wanted = false; // the user (or autostart) wants a conversation
    /** @type {Call | null} */
    this.call = null;
    /** @type {MediaStream | null} the last call's remote audio */
    this.remote = null;
    this.state = "idle";
    /** @type {Problem | null} the last failure shown */
    this.problem = null;
    this.timers = { retry: 0, countdown: 0, idle: 0, wake: 0, stable: 0, reopen: 0 };
    this.greet = false; // the visitor started a conversation and has not been greeted in it yet
    this.unjoined = 0; // calls in a row that were made upstream but never connected
    /** @type {import("./engine.js").Language | null} the visitor's pick (config.languages) */
    this.language = null;
    const hooks = {
      state: () => this.state,
      setState: (state) => this.#setState(state),
      rest: (detail) => this.#rest(detail),
      closed: () => this.#closedForToday(),
      lost: () => this.#lost(new Problem("session_ended")),
      start: (opts) => this.start(opts),
      wanted: () => this.wanted,
      up: () => (this.call?.connectedAt ? this.call : null),
    };
    this.news = new CallNews(view.shown, hooks);
    this.triggers = new Triggers(engine, hooks);
    reporter.listen((event) => {
      const call = this.call; // only the current call's news counts
      if (!("call_id" in event)) this.triggers.hear(event);
      else if ((call?.connectedAt && event.call_id === call.callId) || this.news.late(event)) this.news.hear(event);
    });

    navigator.mediaDevices?.addEventListener?.("devicechange", () => {
      if (this.wanted && this.state === "error" && this.problem?.code === "no_mic") this.start({ greet: false });
    });
    addEventListener("pagehide", () => this.call?.close(null, { now: true }));
  }

  /** The microphone's stream while the page holds one, else null. */
  get mic() {
    return this.microphone.stream;
  }

  /** The visitor (or autostart) wants a conversation; `greet`: a visitor (a tap, a voice) asks for it. */
  start({ greet = true } = {}) {
    if (this.hours.closed) return this.stop("closed");
    this.wanted = true;
    this.greet ||= greet;
    this.#clearTimers();
    this.view.showProblem(null);
    if (!window.isSecureContext || !navigator.mediaDevices?.getUserMedia) {
      return this.#fail(new Problem("insecure", { retry: false }));
    }
    if (!window.RTCPeerConnection) return this.#fail(new Problem("no_webrtc", { retry: false }));
    this.#connect(); // first: the mic prompt and the offer get going before anything else
    // Inside the tap: browsers (iOS above all) only start playback from a gesture. The meters'
    // AudioContext is made once the mic arrives, while the offer is in flight.
    this.view.playAgent();
  }

  /** Hang up and wait, `state`: "idle", or "closed" outside the opening hours. */
  stop(state = this.hours.closed ? "closed" : "idle") {
    this.wanted = false;
    this.#clearTimers();
    this.#endCall();
    this.microphone.release();
    this.#setMuted(false);
    this.view.showProblem(null);
    this.#setState(state);
  }

  /** The Start/Stop button: Stop while a conversation is wanted and not stuck on a problem. */
  toggle() {
    if (this.wanted && this.state !== "error") this.stop();
    else this.start();
  }

  /** The visitor picked a language (null: the default again): the call under way, if any, and each
   * call after it are told; nothing reconnects. */
  setLanguage(code) {
    if (code === (this.language?.code ?? null)) return; // no news: nothing to send again
    this.language = this.config.languages?.find((language) => language.code === code) ?? null;
    if (this.language && this.call) this.engine.language(this.call, this.language);
  }

  toggleMute() {
    this.#setMuted(!this.microphone.muted);
  }

  #setMuted(muted) {
    this.microphone.setMuted(muted);
    this.view.showMuted(muted);
  }

  /** Hang up the current call, if any (a retry tap mid-attempt must not leave one running); `reason`:
   * why, if not the visitor's or the page's ("idle": nobody spoke). */
  #endCall(reason = "") {
    const call = this.call;
    this.call = null;
    this.news.reset();
    if (call?.callId) this.reporter.release(call.callId);
    call?.close(null, { reason });
    if (call) this.engine.reset();
  }

  async #connect() {
    this.#endCall();
    this.#setState(this.backoff.attempt ? "reconnecting" : this.mic ? "connecting" : "starting");
    const early = this.boot.early; // the call boot.js started while the page loaded, used once
    this.boot.early = null;
    const mic = this.microphone.track(early?.mic, {
      wanted: () => this.wanted,
      onEnded: () => this.wanted && this.#lost(new Problem("no_mic", { retry: false })),
    });
    const call = (this.call = new Call({
      callUrl: this.config.call_url,
      open: early ? () => early.call : this.boot.openCall,
      mic,
      engine: this.engine,
      onEvent: (event) => this.call === call && this.#onEvent(event),
      onTrack: (stream) => this.call === call && this.#onTrack(stream),
      onEnd: (problem) => this.call === call && call.connectedAt && this.#lost(problem ?? new Problem("dropped")),
    }));
    this.engine.begin(call, {
      greet: this.greet,
      language: this.language,
      turn: (state) => this.call === call && this.#turn(state),
      heard: () => this.call === call && this.#armIdle(),
    });
    mic.then(() => this.call === call && this.state === "starting" && this.#setState("connecting"), () => {});
    try {
      await Promise.all([mic, call.connect()]); // the offer goes out while the mic prompt is open
    } catch (error) {
      this.reporter.start();
      if (this.call !== call) return;
      if (call.callId) this.unjoined += 1; // made (and maybe billed), never joined
      call.close();
      this.call = null;
      return this.#fail(error instanceof Problem ? error : new Problem("failed", { message: String(error) }));
    }
    this.reporter.start();
    if (this.call !== call) return call.close(); // superseded meanwhile (already hung up)
    this.greet = false; // a greeting (if any) went with this call: reconnects do not repeat it
    this.unjoined = 0;
    this.view.showMeters(this.mic, this.remote);
    if (call.callId) this.reporter.claim(call.callId, call.claim);
    this.view.showCallUp();
    this.#setState(this.engine.agentSpeaking ? "agent-speaking" : "listening"); // greeting already?
    this.timers.stable = setTimeout(() => this.backoff.reset(), STABLE_MS);
    this.#armIdle();
    this.triggers.up(call);
  }

  #onTrack(stream) {
    this.view.playAgent(stream);
    this.remote = stream;
  }

  #onEvent(event) {
    this.#turn(this.engine.handle(event, this.state, this.call?.callId));
  }

  /** The conversation moves to `next` (if anything); a quiet moment may rotate the session. */
  #turn(next) {
    next = next && this.news.turn(next);
    if (!next) return;
    const call = this.call;
    if (next === "listening" && call?.connectedAt && performance.now() >= this.engine.rotateAt(call.connectedAt)) {
      // A quiet moment after the rotation time: hang up and start the next session now.
      return this.#lost(new Problem("session_ended"));
    }
    this.#setState(next);
    if (next === "agent-speaking" || (next === "user-speaking" && !this.engine.levelSpeech)) this.#armIdle();
  }

  /** The call (or its microphone) went away after it had connected. */
  #lost(problem) {
    const call = this.call;
    this.news.lost(call?.callId);
    this.#endCall();
    // A session that reached its end after a good run starts afresh at once; one that dies
    // right after connecting backs off like any other failure.
    const lasted = call?.connectedAt && performance.now() - call.connectedAt >= STABLE_MS;
    if (problem.code === "session_ended" && lasted) this.backoff.reset();
    this.#fail(problem);
  }

  #fail(problem) {
    this.#clearTimers();
    this.engine.reset();
    this.view.showCallDown();
    if (!this.wanted) return;
    if (problem.code === "closed") this.hours.refused(); // the server's clock says so
    if (this.hours.closed) return this.stop("closed"); // no reconnecting after closing time
    if (problem.code === "budget_spent") return this.#closedForToday(); // the server's budget says so
    this.view.showMeters(this.mic, this.call && this.remote);
    if (this.unjoined >= UNJOINED_LIMIT && explain(problem).retry) {
      problem = new Problem("no_media", { retryAfterMs: UNJOINED_RETRY_MS });
    }
    this.problem = problem;
    const { retry } = explain(problem);
    this.reporter.send({ type: "error", message: `${problem.code}: ${problem.message}` });
    this.view.showProblem(problem);
    if (!retry) {
      this.microphone.release(); // waiting for the user: the microphone (and its indicator) off
      return this.#setState("error");
    }
    this.view.offerStop();
    this.#countdown(this.backoff.next(problem.retryAfterMs));
  }

  #countdown(delayMs) {
    const due = performance.now() + delayMs;
    this.#setState("reconnecting");
    const show = () => this.view.showCountdown(due);
    show();
    this.timers.countdown = setInterval(show, 250);
    this.timers.retry = setTimeout(() => {
      clearInterval(this.timers.countdown);
      this.#connect();
    }, delayMs);
  }

  /** Hang up after a while with nobody talking; wake on a tap or a voice. */
  #armIdle() {
    clearTimeout(this.timers.idle);
    const seconds = this.config.idle_timeout;
    if (seconds > 0) this.timers.idle = setTimeout(() => this.#pause(), seconds * 1000);
  }

  #pause() {
    const talking = this.state === "user-speaking" && !this.engine.levelSpeech; // noise keeps no call
    if (this.engine.agentSpeaking || talking || this.news.working) return this.#armIdle();
    this.#rest("detail.paused", "idle");
  }

  /** Hang up (the engine's farewell first) and wait, paused, for a tap or a voice; `detail`: the
   * words (their key) shown after "Paused"; `reason`: why, for the server's record ("idle"). */
  #rest(detail, reason = "") {
    if (this.hours.closed) return this.stop("closed"); // closing time: no waking
    this.#endCall(reason);
    this.#clearTimers();
    this.view.showCallDown();
    this.#setState("paused");
    this.view.showDetailKey(detail);
    let loudSince = 0;
    this.timers.wake = setInterval(() => {
      const loud = this.view.meters.loudness("you") > SPEECH_RMS;
      loudSince = loud ? loudSince || performance.now() : 0;
      // A visitor talks: their first words went before the call, so the agent greets and asks.
      if (loudSince && performance.now() - loudSince > WAKE_MS) this.start();
    }, 100);
    this.wanted = false;
  }

  /** The day's budget is spent: closed; a tap on Start asks the server again, and a kiosk that
   * starts by itself asks now and then (the next day it is let in). */
  #closedForToday() {
    this.stop("closed");
    this.view.showDetailKey("detail.budget_spent");
    if (!this.config.autostart) return;
    this.timers.reopen = setTimeout(() => this.state === "closed" && this.start({ greet: false }), BUDGET_RETRY_MS);
  }

  #setState(state) {
    this.state = state;
    this.view.showState(state);
    this.reporter.send({ type: "state", state });
  }

  /** Every timer and interval (they share one list of ids: clearTimeout ends either). */
  #clearTimers() {
    for (const id of Object.values(this.timers)) clearTimeout(id);
  }
}
