// GPT-Live's events as a conversation (the Engine of session.js; openai-live.md §2, §4.3, §5.4,
// §6): captions in turns, whose turn it is from the audio levels, the greeting, an answer to a
// delegation nobody else answers, which errors end a call, usage, and rotation before expiry.
// Barge-in is the model's own: the page never silences the agent on a guess.

import { Problem } from "./messages.js";
import { Speaking } from "./speaking.js";
import { Turns } from "./turns.js";

// §2.3: the errors after which a session cannot go on. Any other is told to the terminal and
// the call goes on (a refused command, a moderation cut).
const FATAL_CODES = new Set([
  "insufficient_quota",
  "invalid_api_key",
  "account_deactivated",
  "billing_hard_limit_reached",
]);
// A delegated Responses task is over (§3.3): the agent speaks its result by itself.
const RESPONSE_ENDS = new Set(["response.completed", "response.failed", "response.incomplete"]);
// Start a fresh session this long before the session expires (§4.3), at a quiet moment, as the
// Realtime engine leaves 5 of its 60 minutes. A session with less than this left just expires.
const ROTATE_LEAD_MS = 5 * 60_000;
// After your turn the agent is thinking until it answers, or for this long (it may let a word pass).
const ANSWER_WAIT_MS = 2_000;
// Client delegation (no backend model configured): nothing else answers a delegation and the
// model would wait for ever (§3.4), so the page has it say that this cannot be done here.
const DECLINE = "Tell the visitor, in one short sentence, that you cannot do that from this kiosk.";
// The greeting waits this long at most for the server to confirm a language picked before the call.
const LANGUAGE_WAIT_MS = 3_000;

/** Reads each server event of the current call; says which state the turn moves to. */
export class LiveEngine {
  /**
   * @param {import("./view.js").View} view its captions, meters and detail line
   * @param {import("./reporter.js").Reporter} reporter
   * @param {{greeting?: string, call_url?: string}} config the page config: what a visitor's call
   *   opens with, where its calls are (a language is told to the server there)
   */
  constructor(view, reporter, config) {
    this.view = view;
    this.reporter = reporter;
    this.greeting = typeof config.greeting === "string" ? config.greeting.trim() : "";
    this.callUrl = config.call_url || "/api/call";
    this.turns = new Turns(view.captions, (role, text) => this.#report({ type: "transcript", role, text }));
    this.speaking = new Speaking(view.meters, () => this.#poll());
    this.#forget();
  }

  get agentSpeaking() {
    return this.speaking.is("agent");
  }

  /** The channel is open, but nothing goes before `session.started` (commands before it are
   * refused): it greets then. */
  opened() {}

  /** "You speaking" is the microphone's level here (there are no speech events). */
  get levelSpeech() {
    return true;
  }

  /** A call is being opened: its events follow. */
  begin(call, { greet, language, turn, heard }) {
    this.reset();
    this.call = call;
    this.greet = greet;
    if (language) this.picked = language.code; // told once the session starts, before the greeting
    this.turn = turn;
    this.heard = heard;
  }

  /**
   * Handle one server event.
   * @param {{type: string}} event
   * @returns {string | undefined} the state the turn moves to, if it moves
   */
  handle(event) {
    switch (event.type) {
      case "session.started":
        return this.#started(event.session);
      case "session.input_transcript.delta":
        this.heard?.(); // words, not noise: the visitor is there
        this.turns.add("user", event);
        this.speaking.hear("you"); // your words, when the echo canceller hides your level
        return this.#show();
      case "session.output_transcript.delta":
        this.turns.add("agent", event); // it may come before the audio: the level says who speaks
        return;
      case "session.delegation.created":
        this.#delegated(event.delegation);
        return this.#show();
      case "response.event": // the Responses backend at work: thinking until its response ends
        if (RESPONSE_ENDS.has(event.event?.type)) this.delegating = this.thinkingSince = 0;
        return this.#show();
      case "session.closed":
        this.closed = true;
      // falls through: its usage is the final count
      case "session.usage.updated":
        this.#usage(event.usage);
        return;
      case "error":
        this.#serverError(event.error || {});
        return;
    }
  }

  /** The agent speaks next, as commentary: once the session has started (commands before it are
   * refused) and the greeting has gone. */
  say(call, instructions) {
    if (call !== this.call) return;
    if (this.greeted) this.#comment(instructions);
    else this.said.push(instructions);
  }

  /** The visitor picked a language: the server appends its standing rule for it (the page's
   * channel may not; Live takes no transcription hint), once the session has started. */
  language(call, { code }) {
    if (call !== this.call) return;
    if (this.started) this.#tell(code);
    else this.picked = code;
  }

  /** POST the pick to the server, which tells the session; settles (never rejects) when it answered
   * or after LANGUAGE_WAIT_MS. */
  async #tell(code) {
    const { callId } = this.call;
    if (!callId) return; // no id, no server-side call: nothing can be told
    const url = `${this.callUrl}/${encodeURIComponent(callId)}/language`;
    try {
      const response = await fetch(url, {
        method: "POST",
        headers: { "Content-Type": "application/json" },
        body: JSON.stringify({ code }),
        signal: AbortSignal.timeout(LANGUAGE_WAIT_MS),
      });
      if (!response.ok) this.reporter.send({ type: "error", message: `language ${code}: HTTP ${response.status}` });
    } catch (error) {
      this.reporter.send({ type: "error", message: `language ${code}: ${error?.name || "failed"}` });
    }
  }

  #comment(content) {
    this.call.send({ type: "session.commentary.append", delegation_id: null, content });
  }

  /** @returns {Problem | null} the call cannot go on after this event */
  ends(event) {
    if (event.type === "error") {
      const { code, message } = event.error || {};
      return FATAL_CODES.has(code) ? new Problem(code, { message: String(message || "") }) : null;
    }
    // Not asked for (a call that asked is over already): expiry starts afresh, as a rotation does.
    if (event.type === "session.closed") return new Problem(event.reason === "expired" ? "session_ended" : "dropped");
    return null;
  }

  /** `session.close`, confirmed by `session.closed`: only to a session that started and is open. */
  farewell(call) {
    if (call !== this.call || !this.started || this.closed) return null;
    // Its final count goes with the hang-up (call.js): the server's record of the call goes then.
    const confirmed = (event) => billed(event.usage);
    return { say: { type: "session.close" }, until: "session.closed", confirmed };
  }

  /** @returns {number} when to rotate (performance.now()); Infinity until the session says */
  rotateAt() {
    return this.rotateAfter;
  }

  /** The call is gone: its turns are over, nobody speaks, the meters are left alone. */
  reset() {
    this.turns.finishAll();
    this.speaking.stop();
    this.#forget();
  }

  #forget() {
    this.call = null;
    this.turn = null;
    this.heard = null;
    this.greet = false;
    this.started = false;
    this.greeted = false; // the session started and its greeting (if any) went: say() speaks at once
    /** @type {string[]} what to say once the greeting has gone (say()) */
    this.said = [];
    /** @type {string | null} the language picked before the session started, told first */
    this.picked = null;
    this.closed = false;
    this.thinkingSince = 0; // an answer is due since then (performance.now()): a delegation, your turn
    this.thinkingUntil = 0; // and at the latest until then
    this.delegating = false; // a Responses backend works on a task (until its response ends)
    this.you = false; // you were speaking at the last look
    this.youStoppedAt = 0; // when your last turn ended, until the agent answers it
    this.shown = "listening"; // what the page shows, as far as this engine moved it
    this.rotateAfter = Infinity;
  }

  #started(session) {
    if (this.started) return;
    this.started = true;
    // By the page's clock: one that is off only moves the rotation (or leaves it to expiry).
    const left = Number(session?.expires_at) * 1000 - Date.now();
    if (left > ROTATE_LEAD_MS) this.rotateAfter = performance.now() + left - ROTATE_LEAD_MS;
    const { call, picked } = this;
    this.picked = null;
    // The language first, so the greeting is in it: the greeting waits for the server's answer.
    if (picked) this.#tell(picked).then(() => this.#greet(call));
    else this.#greet(call);
    this.speaking.start();
    return this.#show();
  }

  #greet(call) {
    if (call !== this.call || this.greeted) return;
    this.greeted = true;
    if (this.greet && this.greeting) this.#comment(this.greeting);
    for (const instructions of this.said.splice(0)) this.#comment(instructions);
    this.greet = false;
  }

  #delegated(delegation) {
    this.#think(Infinity);
    // The backend's work ends with its response, not when the agent fills the wait with words.
    this.delegating = delegation?.target === "responses";
    if (delegation?.target === "client" && typeof delegation.id === "string") {
      this.call.send({ type: "session.commentary.append", delegation_id: delegation.id, content: DECLINE });
    }
  }

  /** Each reading of the meters: the state moves if whoever speaks changed. */
  #poll() {
    const next = this.#show();
    if (next) this.turn?.(next);
  }

  /** An answer is due from now on, for at most `waitMs` (or as long as one already due). */
  #think(waitMs, now = performance.now()) {
    this.thinkingUntil = Math.max(this.thinkingSince ? this.thinkingUntil : 0, now + waitMs);
    this.thinkingSince = now;
  }

  /** The state now, if it differs from the one shown (and the call is through). */
  #show() {
    if (!this.call?.connectedAt) return;
    const { speaking } = this;
    const now = performance.now();
    const you = speaking.is("you", now);
    // Your turn is over and the agent is not talking: it owes you an answer. So the next quiet
    // moment (a rotation's) is after that answer, not in the breath before it.
    if (this.you && !you && !speaking.is("agent", now)) {
      this.#think(ANSWER_WAIT_MS, now);
      this.youStoppedAt = speaking.heard.you;
    }
    this.you = you;
    if (this.youStoppedAt && speaking.is("agent", now) && speaking.since.agent >= this.youStoppedAt) {
      // How long the model took to answer: the terminal's turn timing, as Realtime's.
      this.reporter.send({ type: "turn", ms: Math.round(speaking.since.agent - this.youStoppedAt) });
      this.youStoppedAt = 0;
    }
    // Thinking lasts until the agent starts speaking (again), or the wait is over.
    const answered = speaking.is("agent", now) && speaking.since.agent >= this.thinkingSince;
    if (this.thinkingSince && !this.delegating && (answered || now >= this.thinkingUntil)) this.thinkingSince = 0;
    // Both may speak at once: you first, as the model hears you over itself.
    const next = you
      ? "user-speaking"
      : speaking.is("agent", now)
        ? "agent-speaking"
        : this.thinkingSince
          ? "thinking"
          : "listening";
    if (next === this.shown) return;
    this.shown = next;
    return next;
  }

  /** `usage.seconds` is cumulative: each count goes as it is, never summed. */
  #usage(usage) {
    const seconds = billed(usage);
    if (seconds !== null) this.#report({ type: "usage", usage: { seconds } });
  }

  #serverError(error) {
    if (FATAL_CODES.has(error.code)) return; // ends() ends the call, and the page explains it
    this.reporter.send({ type: "error", message: `${error.code || error.type}: ${error.message || ""}` });
    this.view.showDetail(error.message ? `(${String(error.message).slice(0, 80)})` : "");
  }

  #report(event) {
    this.reporter.send({ ...event, call_id: this.call?.callId ?? null });
  }
}

/** `usage.seconds`, if it is a count. */
function billed(usage) {
  const seconds = usage?.seconds;
  return typeof seconds === "number" && Number.isFinite(seconds) && seconds >= 0 ? seconds : null;
}
