// The Realtime API's events as a conversation (the Engine of session.js): captions, barge-in,
// what the terminal is told (transcripts, turn timings, usage), whose turn it is, and which
// events end a session.

import { Problem } from "./messages.js";

// Sessions end after 60 minutes; start a fresh one before that, at a quiet moment.
const ROTATE_AFTER_MS = 55 * 60_000;
// Server errors after which the session cannot go on.
const FATAL_CODES = new Set(["session_expired", "session_expired_error", "invalid_session"]);

/** Reads each server event of the current call; says which state the turn moves to. */
export class RealtimeEngine {
  /**
   * @param {import("./view.js").View} view for the captions, the agent's audio and the detail line
   * @param {import("./reporter.js").Reporter} reporter
   * @param {{greeting?: string}} config the page config: what a visitor's call opens with
   */
  constructor(view, reporter, config) {
    this.view = view;
    this.captions = view.captions;
    this.reporter = reporter;
    this.agentItem = null; // the agent transcript item being spoken
    this.agentSpeaking = false;
    this.speechStoppedAt = 0;
    this.levelSpeech = false; // "you speaking" is the API's own voice detection
    this.responding = false; // a response is under way: another response.create would be refused
    /** @type {{call: import("./call.js").Call, instructions: string}[]} what say() keeps until then */
    this.waiting = [];
    this.greeting = typeof config?.greeting === "string" ? config.greeting.trim() : "";
    /** @type {{call: import("./call.js").Call, language: object | null, greet: boolean} | null}
     * what to say first on the call being opened, once its channel opens */
    this.opening = null;
  }

  /**
   * Handle one server event.
   * @param {{type: string}} event
   * @param {string} state the page's state now
   * @param {string | null} callId the call it came on, for the reports
   * @returns {string | undefined} the state the turn moves to, if it moves
   */
  handle(event, state, callId) {
    switch (event.type) {
      case "input_audio_buffer.speech_started":
        if (this.agentSpeaking) this.#bargeIn();
        this.captions.userStarted(event.item_id);
        return "user-speaking";
      case "input_audio_buffer.speech_stopped":
        this.speechStoppedAt = performance.now();
        return "thinking";
      case "conversation.item.input_audio_transcription.completed":
        this.captions.userText(event.item_id, event.transcript || "");
        this.reporter.send({ type: "transcript", role: "user", text: event.transcript || "", call_id: callId });
        return;
      case "conversation.item.input_audio_transcription.failed":
        this.captions.userFailed(event.item_id);
        return;
      case "response.output_audio_transcript.delta":
      case "response.output_text.delta":
        this.agentItem = event.item_id;
        this.captions.agentDelta(event.item_id, event.delta || "");
        return;
      case "response.output_audio_transcript.done":
      case "response.output_text.done":
        this.captions.agentDone(event.item_id, event.transcript ?? event.text);
        return;
      case "output_audio_buffer.started":
        this.agentSpeaking = true;
        this.view.silenceAgent(false);
        if (this.speechStoppedAt) {
          this.reporter.send({ type: "turn", ms: Math.round(performance.now() - this.speechStoppedAt) });
          this.speechStoppedAt = 0;
        }
        return "agent-speaking";
      case "output_audio_buffer.stopped":
      case "output_audio_buffer.cleared":
        this.agentSpeaking = false;
        return state === "agent-speaking" ? "listening" : undefined;
      case "response.created":
        this.responding = true;
        return;
      case "response.done":
        this.responding = false;
        this.#responseDone(event.response || {}, callId);
        this.#sayNext();
        return !this.agentSpeaking && state === "thinking" ? "listening" : undefined;
      case "error":
        this.#serverError(event.error || {});
        return;
    }
  }

  /** A call is being opened; `greet`: a visitor wants it, and the agent speaks first;
   * `language`: the visitor's pick, told before the greeting. */
  begin(call, { greet, language }) {
    this.opening = { call, language, greet: greet && Boolean(this.greeting) };
  }

  /** The call's channel is open: the language (if picked) goes first, then the greeting (if any). */
  opened(call) {
    const { language, greet } = this.opening?.call === call ? this.opening : {};
    this.opening = null;
    if (language) this.language(call, language);
    if (greet) this.say(call, this.greeting);
  }

  /** The agent speaks: a response with these instructions, on the call's data channel, now or
   * once the response under way is done. */
  say(call, instructions) {
    this.waiting.push({ call, instructions });
    this.#sayNext();
  }

  /** What to say goes in as a system message and a plain response follows: a response's own
   * `instructions` would replace the session's (the persona, the language, the tools' rules). */
  #sayNext() {
    if (this.responding || !this.waiting.length) return;
    const { call, instructions } = this.waiting.shift();
    call.send(systemMessage(instructions));
    this.responding = call.send({ type: "response.create" });
  }

  /** The visitor picked a language: the transcription expects it (a session.update of that part
   * only), and the agent is told in a system message, as the instructions (the server's, whole in
   * an update) are not the page's to rewrite. */
  language(call, choice) {
    if (this.opening?.call === call) {
      this.opening.language = choice; // the channel is not open yet: said first when it is
      return;
    }
    const { transcription, say } = choice;
    if (transcription) {
      call.send({ type: "session.update", session: { type: "realtime", audio: { input: { transcription } } } });
    }
    call.send(systemMessage(say));
  }

  /** @returns {Problem | null} the session cannot go on after this event */
  ends(event) {
    return event.type === "error" && isFatal(event.error) ? new Problem("session_ended") : null;
  }

  /** Hanging up is the server's (DELETE): nothing to say on the channel first. */
  farewell() {
    return null;
  }

  /** @param {number} connectedAt performance.now() when the call connected */
  rotateAt(connectedAt) {
    return connectedAt + ROTATE_AFTER_MS;
  }

  /** The call is gone: nobody is speaking, and the next call's agent is heard. */
  reset() {
    this.agentSpeaking = false;
    this.responding = false;
    this.waiting = [];
    this.opening = null;
    this.view.silenceAgent(false);
  }

  /** You spoke over the agent: silence it here at once (the server stops sending too). */
  #bargeIn() {
    this.agentSpeaking = false;
    this.view.silenceAgent(true); // heard again when the next answer starts
    if (this.agentItem) this.captions.agentCut(this.agentItem);
  }

  #responseDone(response, callId) {
    const cut = response.status === "cancelled";
    for (const item of response.output || []) {
      if (item.type !== "message") continue;
      if (cut) this.captions.agentCut(item.id);
      const text = this.captions.text(item.id);
      if (text) this.reporter.send({ type: "transcript", role: "agent", text, cut, call_id: callId });
    }
    // With its response's id: the server counts each response once, OpenAI's own count first.
    if (response.usage) {
      this.reporter.send({ type: "usage", usage: response.usage, response_id: response.id, call_id: callId });
    }
  }

  #serverError(error) {
    // Most errors leave the session usable (OpenAI: "most errors are recoverable").
    this.reporter.send({ type: "error", message: `${error.code || error.type}: ${error.message || ""}` });
    if (error.code === "response_cancel_not_active") return;
    this.view.showDetail(error.message ? `(${error.message.slice(0, 80)})` : "");
  }
}

function isFatal(error) {
  if (!error) return false;
  return FATAL_CODES.has(error.code) || /maximum duration/i.test(error.message || "");
}

/** A system message for the conversation: the agent takes it as a rule from the operator. */
function systemMessage(text) {
  return { type: "conversation.item.create", item: { type: "message", role: "system", content: [{ type: "input_text", text }] } };
}
