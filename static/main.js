// The page: wires the call, the meters, the captions and the controls to one state machine.

import { Backoff, STABLE_MS } from "./backoff.js";
import { Call } from "./call.js";
import { Captions } from "./captions.js";
import { explain, micProblem, Problem, STATES } from "./messages.js";
import { Reporter } from "./reporter.js";
import { Visualizer } from "./visualizer.js";

// A paused kiosk wakes when its microphone hears this loudness (RMS, ~-34 dBFS: speech near
// it, not a room's hum or fans) for WAKE_MS.
const WAKE_RMS = 0.02;
const WAKE_MS = 300;
// Sessions end after 60 minutes; start a fresh one before that, at a quiet moment.
const ROTATE_AFTER_MS = 55 * 60_000;

const $ = (id) => document.getElementById(id);

class App {
  constructor(boot) {
    this.boot = boot;
    this.config = boot.config;
    this.ui = {
      main: document.querySelector("main"),
      label: $("state-label"),
      detail: $("state-detail"),
      start: $("start"),
      mute: $("mute"),
      retry: $("retry"),
      problem: $("problem"),
      problemTitle: $("problem-title"),
      problemHelp: $("problem-help"),
      problemLink: $("problem-link"),
      audio: $("agent-audio"),
    };
    this.viz = new Visualizer({
      you: { canvas: $("viz-you"), color: "#2dd4bf" },
      agent: { canvas: $("viz-agent"), color: "#f59e0b" },
    });
    this.captions = new Captions($("captions"), $("hint"));
    this.reporter = new Reporter(this.config.events_url);
    this.backoff = new Backoff();
    this.wanted = false; // the user (or autostart) wants a conversation
    this.call = null;
    this.mic = null; // MediaStream, kept across reconnects so the prompt shows once
    this.muted = false; // the user's choice, applied to every microphone track we get
    this.state = "idle";
    this.timers = { retry: 0, countdown: 0, idle: 0, wake: 0, rotate: 0, stable: 0 };
    this.agentItem = null; // the agent transcript item being spoken
    this.agentSpeaking = false;
    this.rotateDue = false;
    this.speechStoppedAt = 0;

    this.ui.start.onclick = () => (this.wanted && this.state !== "error" ? this.stop() : this.start());
    this.ui.mute.onclick = () => this.toggleMute();
    this.ui.retry.onclick = () => this.start();
    navigator.mediaDevices?.addEventListener?.("devicechange", () => {
      if (this.wanted && this.state === "error" && this.problem?.code === "no_mic") this.start();
    });
    addEventListener("pagehide", () => this.call?.close());
    // An AudioContext made without a gesture starts suspended: any later tap or key wakes it.
    for (const kind of ["pointerdown", "keydown"]) addEventListener(kind, () => this.viz.resume(), { passive: true });
  }

  start() {
    this.wanted = true;
    this.#clearTimers();
    this.#showProblem(null);
    if (!window.isSecureContext || !navigator.mediaDevices?.getUserMedia) {
      return this.#fail(new Problem("insecure", { retry: false }));
    }
    if (!window.RTCPeerConnection) return this.#fail(new Problem("no_webrtc", { retry: false }));
    this.#connect(); // first: the mic prompt and the offer get going before anything else
    // Inside the tap: browsers (iOS above all) only start playback from a gesture. The meters'
    // AudioContext is made once the mic arrives, while the offer is in flight.
    this.ui.audio.play().catch(() => {});
  }

  stop() {
    this.wanted = false;
    this.#clearTimers();
    this.#endCall();
    this.#releaseMic();
    this.#setMuted(false);
    this.#showProblem(null);
    this.#setState("idle");
  }

  toggleMute() {
    this.#setMuted(!this.muted);
  }

  #setMuted(muted) {
    this.muted = muted;
    for (const track of this.mic?.getAudioTracks() ?? []) track.enabled = !muted;
    this.ui.mute.setAttribute("aria-pressed", String(muted));
    this.ui.mute.textContent = muted ? "Unmute" : "Mute";
    this.ui.main.classList.toggle("muted", muted);
  }

  /** Hang up the current call, if any (a retry tap mid-attempt must not leave one running). */
  #endCall() {
    const call = this.call;
    this.call = null;
    if (call?.callId) this.reporter.release(call.callId);
    call?.close();
  }

  async #connect() {
    this.#endCall();
    this.rotateDue = false;
    this.#setState(this.backoff.attempt ? "reconnecting" : this.mic ? "connecting" : "starting");
    const early = this.boot.early; // the call boot.js started while the page loaded, used once
    this.boot.early = null;
    const mic = this.#micTrack(early?.mic);
    const call = (this.call = new Call({
      callUrl: this.config.call_url,
      open: early ? () => early.call : this.boot.openCall,
      mic,
      onEvent: (event) => this.call === call && this.#onEvent(event),
      onTrack: (stream) => this.call === call && this.#onTrack(stream),
      onEnd: (problem) => this.call === call && call.connectedAt && this.#ended(problem),
    }));
    mic.then(() => this.call === call && this.state === "starting" && this.#setState("connecting"), () => {});
    try {
      await Promise.all([mic, call.connect()]); // the offer goes out while the mic prompt is open
    } catch (error) {
      this.reporter.start();
      if (this.call !== call) return;
      call.close();
      this.call = null;
      return this.#fail(error instanceof Problem ? error : new Problem("failed", { message: String(error) }));
    }
    this.reporter.start();
    if (this.call !== call) return call.close(); // superseded meanwhile (already hung up)
    this.#showMeters();
    if (call.callId) this.reporter.claim(call.callId);
    this.ui.mute.disabled = false;
    this.ui.start.textContent = "Stop";
    this.#showProblem(null);
    this.#setState("listening");
    this.timers.stable = setTimeout(() => this.backoff.reset(), STABLE_MS);
    this.timers.rotate = setTimeout(() => (this.rotateDue = true), ROTATE_AFTER_MS);
    this.#armIdle();
  }

  #micTrack(asked = null) {
    const live = this.mic?.getAudioTracks().find((t) => t.readyState === "live");
    if (live) return Promise.resolve(live);
    return (asked ?? navigator.mediaDevices.getUserMedia(this.boot.mic)).then(
      (stream) => {
        if (!this.wanted) {
          stream.getTracks().forEach((t) => t.stop()); // stopped while the prompt was open
          throw new Problem("stopped", { retry: false });
        }
        this.viz.hide("you"); // a new device: the meter follows it
        this.mic = stream;
        const track = stream.getAudioTracks()[0];
        track.enabled = !this.muted;
        track.onended = () => this.wanted && this.#lost(new Problem("no_mic", { retry: false }));
        return track;
      },
      (error) => {
        throw micProblem(error);
      },
    );
  }

  #releaseMic() {
    this.mic?.getTracks().forEach((t) => t.stop());
    this.mic = null;
    this.viz.hide("you");
  }

  #onTrack(stream) {
    this.ui.audio.srcObject = stream; // the element must play it for analysers to hear it
    this.ui.audio.play().catch(() => {});
    this.remote = stream;
  }

  /** Start the meters; kept off the connect path, which needs the main thread more. */
  #showMeters() {
    if (this.mic && !this.viz.showing("you")) this.viz.show("you", this.mic);
    if (this.call && this.remote && !this.viz.showing("agent")) this.viz.show("agent", this.remote);
  }

  /** The call ended after it had connected. */
  #ended(problem) {
    this.#lost(problem ?? new Problem("dropped"));
  }

  #lost(problem) {
    const call = this.call;
    this.#endCall();
    // A session that reached its end after a good run starts afresh at once; one that dies
    // right after connecting backs off like any other failure.
    const lasted = call?.connectedAt && performance.now() - call.connectedAt >= STABLE_MS;
    if (problem.code === "session_ended" && lasted) this.backoff.reset();
    this.#fail(problem);
  }

  #fail(problem) {
    this.#clearTimers();
    this.agentSpeaking = false;
    this.ui.audio.muted = false;
    this.ui.mute.disabled = true;
    this.viz.hide("agent");
    if (!this.wanted) return;
    this.#showMeters();
    this.problem = problem;
    const { retry } = explain(problem);
    this.reporter.send({ type: "error", message: `${problem.code}: ${problem.message}` });
    this.#showProblem(problem);
    if (!retry) {
      this.ui.start.textContent = "Start";
      this.#releaseMic(); // waiting for the user: the microphone (and its indicator) off
      return this.#setState("error");
    }
    this.ui.start.textContent = "Stop";
    this.#countdown(this.backoff.next(problem.retryAfterMs));
  }

  #countdown(delayMs) {
    const due = performance.now() + delayMs;
    this.#setState("reconnecting");
    const show = () => {
      const left = Math.max(0, Math.ceil((due - performance.now()) / 1000));
      this.ui.detail.textContent = left ? `in ${left} s` : "now";
    };
    show();
    this.timers.countdown = setInterval(show, 250);
    this.timers.retry = setTimeout(() => {
      clearInterval(this.timers.countdown);
      this.#connect();
    }, delayMs);
    this.ui.retry.hidden = false;
  }

  #onEvent(event) {
    switch (event.type) {
      case "input_audio_buffer.speech_started":
        if (this.agentSpeaking) this.#bargeIn();
        this.captions.userStarted(event.item_id);
        this.#setState("user-speaking");
        this.#armIdle();
        break;
      case "input_audio_buffer.speech_stopped":
        this.speechStoppedAt = performance.now();
        this.#setState("thinking");
        break;
      case "conversation.item.input_audio_transcription.completed":
        this.captions.userText(event.item_id, event.transcript || "");
        this.reporter.send({ type: "transcript", role: "user", text: event.transcript || "", call_id: this.call?.callId });
        break;
      case "conversation.item.input_audio_transcription.failed":
        this.captions.userFailed(event.item_id);
        break;
      case "response.output_audio_transcript.delta":
      case "response.output_text.delta":
        this.agentItem = event.item_id;
        this.captions.agentDelta(event.item_id, event.delta || "");
        break;
      case "response.output_audio_transcript.done":
      case "response.output_text.done":
        this.captions.agentDone(event.item_id, event.transcript ?? event.text);
        break;
      case "output_audio_buffer.started":
        this.agentSpeaking = true;
        this.ui.audio.muted = false;
        if (this.speechStoppedAt) {
          this.reporter.send({ type: "turn", ms: Math.round(performance.now() - this.speechStoppedAt) });
          this.speechStoppedAt = 0;
        }
        this.#setState("agent-speaking");
        this.#armIdle();
        break;
      case "output_audio_buffer.stopped":
      case "output_audio_buffer.cleared":
        this.agentSpeaking = false;
        if (this.state === "agent-speaking") this.#setState("listening");
        break;
      case "response.done":
        this.#responseDone(event.response || {});
        break;
      case "error":
        this.#serverError(event.error || {});
        break;
    }
  }

  /** You spoke over the agent: silence it here at once (the server stops sending too). */
  #bargeIn() {
    this.agentSpeaking = false;
    this.ui.audio.muted = true; // unmuted when the next answer starts
    if (this.agentItem) this.captions.agentCut(this.agentItem);
  }

  #responseDone(response) {
    const cut = response.status === "cancelled";
    for (const item of response.output || []) {
      if (item.type !== "message") continue;
      if (cut) this.captions.agentCut(item.id);
      const text = this.captions.text(item.id);
      if (text) this.reporter.send({ type: "transcript", role: "agent", text, cut, call_id: this.call?.callId });
    }
    if (response.usage) this.reporter.send({ type: "usage", usage: response.usage, call_id: this.call?.callId });
    if (!this.agentSpeaking && this.state === "thinking") this.#setState("listening");
  }

  #serverError(error) {
    // Most errors leave the session usable (OpenAI: "most errors are recoverable").
    this.reporter.send({ type: "error", message: `${error.code || error.type}: ${error.message || ""}` });
    if (error.code === "response_cancel_not_active") return;
    this.ui.detail.textContent = error.message ? `(${error.message.slice(0, 80)})` : "";
  }

  /** Hang up after a while with nobody talking; wake on a tap or a voice. */
  #armIdle() {
    clearTimeout(this.timers.idle);
    const seconds = this.config.idle_timeout;
    if (seconds > 0) this.timers.idle = setTimeout(() => this.#pause(), seconds * 1000);
  }

  #pause() {
    if (this.agentSpeaking || this.state === "user-speaking") return this.#armIdle();
    this.#endCall();
    this.#clearTimers();
    this.ui.mute.disabled = true;
    this.viz.hide("agent");
    this.#setState("paused");
    this.ui.detail.textContent = "to save cost — tap Start or just speak";
    this.ui.start.textContent = "Start";
    let loudSince = 0;
    this.timers.wake = setInterval(() => {
      const loud = this.viz.loudness("you") > WAKE_RMS;
      loudSince = loud ? loudSince || performance.now() : 0;
      if (loudSince && performance.now() - loudSince > WAKE_MS) this.start();
    }, 100);
    this.wanted = false;
  }

  #setState(state) {
    if (state === "listening" && this.rotateDue && this.call) {
      this.rotateDue = false;
      return this.#lost(new Problem("session_ended"));
    }
    this.state = state;
    this.ui.main.dataset.state = state;
    this.ui.label.textContent = STATES[state] ?? state;
    if (state !== "reconnecting" && state !== "paused") this.ui.detail.textContent = "";
    this.ui.retry.hidden = !(state === "reconnecting" || state === "error");
    if (state === "idle" || state === "error") this.ui.start.textContent = "Start";
    this.reporter.send({ type: "state", state });
  }

  #showProblem(problem) {
    const { problem: box, problemTitle, problemHelp, problemLink } = this.ui;
    if (!problem) {
      box.hidden = true;
      return;
    }
    const { title, help } = explain(problem);
    problemTitle.textContent = title;
    problemHelp.textContent = help;
    const setup = problem.code === "insecure" && this.config.setup_url;
    problemLink.hidden = !setup;
    if (setup) {
      problemLink.href = this.config.setup_url;
      problemLink.textContent = "Open the setup page";
    }
    box.hidden = false;
  }

  #clearTimers() {
    clearTimeout(this.timers.retry);
    clearInterval(this.timers.countdown);
    clearTimeout(this.timers.idle);
    clearInterval(this.timers.wake);
    clearTimeout(this.timers.rotate);
    clearTimeout(this.timers.stable);
  }
}

const app = new App(window.voicekioskBoot);
const config = app.config;
window.voicekiosk = app; // for the curious (and for tests): the page's state, read-only by convention
window.voicekioskBoot.forget();
if (config.autostart || window.voicekioskBoot.tapped) app.start();
