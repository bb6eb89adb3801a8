// What the page shows: the state line, the problem box, the controls, the agent's <audio>, the
// meters, the captions and what the agent shows beside them. It only draws; session.js decides.

import { Captions } from "./captions.js";
import { explain, STATES } from "./messages.js";
import { Shown } from "./shown.js";
import { Visualizer } from "./visualizer.js";

const $ = (id) => document.getElementById(id);

/** The page's elements, with one method for each thing the session shows. */
export class View {
  /** @param {string} [setupUrl] the setup page, linked from the "needs HTTPS" problem */
  constructor(setupUrl) {
    this.setupUrl = setupUrl;
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
    // The meters in the page's colours for you and the agent (a [brand] moves them to keep 3:1 on its background).
    const css = getComputedStyle(document.documentElement);
    const colour = (name, fallback) => css.getPropertyValue(name).trim() || fallback;
    this.meters = new Visualizer({
      you: { canvas: $("viz-you"), color: colour("--you", "#2dd4bf") },
      agent: { canvas: $("viz-agent"), color: colour("--agent", "#f59e0b") },
    });
    this.captions = new Captions($("captions"), $("hint"));
    this.shown = new Shown($("shown"));
    // An AudioContext made without a gesture starts suspended: any later tap or key wakes it.
    for (const kind of ["pointerdown", "keydown"]) addEventListener(kind, () => this.meters.resume(), { passive: true });
  }

  /** Call `start`, `mute` or `retry` when that button is pressed. */
  bind({ start, mute, retry }) {
    this.ui.start.onclick = start;
    this.ui.mute.onclick = mute;
    this.ui.retry.onclick = retry;
  }

  /** @param {string} state one of messages.js STATES; tests read it from main's data-state */
  showState(state) {
    const { main, label, detail, retry, start } = this.ui;
    main.dataset.state = state;
    label.textContent = STATES[state] ?? state;
    if (state !== "reconnecting" && state !== "paused") detail.textContent = "";
    retry.hidden = !(state === "reconnecting" || state === "error");
    if (state === "idle" || state === "error" || state === "paused") start.textContent = "Start";
  }

  /** The small text after the state's name. */
  showDetail(text) {
    this.ui.detail.textContent = text;
  }

  /** Seconds left until `due` (a performance.now() time), as the detail. */
  showCountdown(due) {
    const left = Math.max(0, Math.ceil((due - performance.now()) / 1000));
    this.showDetail(left ? `in ${left} s` : "now");
  }

  /** Explain a Problem, or hide the box for null. */
  showProblem(problem) {
    const { problem: box, problemTitle, problemHelp, problemLink } = this.ui;
    if (!problem) {
      box.hidden = true;
      return;
    }
    const { title, help } = explain(problem);
    problemTitle.textContent = title;
    problemHelp.textContent = help;
    const setup = problem.code === "insecure" && this.setupUrl;
    problemLink.hidden = !setup;
    if (setup) {
      problemLink.href = this.setupUrl;
      problemLink.textContent = "Open the setup page";
    }
    box.hidden = false;
  }

  showMuted(muted) {
    const { main, mute } = this.ui;
    mute.setAttribute("aria-pressed", String(muted));
    mute.textContent = muted ? "Unmute" : "Mute";
    main.classList.toggle("muted", muted);
  }

  /** The Start button becomes Stop (back to Start with the idle, paused and error states). */
  offerStop() {
    this.ui.start.textContent = "Stop";
  }

  /** A call is through: Mute works, Start reads Stop, no problem shown. */
  showCallUp() {
    this.ui.mute.disabled = false;
    this.offerStop();
    this.showProblem(null);
  }

  /** The call is gone: nothing to mute, no agent to meter. */
  showCallDown() {
    this.ui.mute.disabled = true;
    this.meters.hide("agent");
  }

  /** Play the agent's voice (a new `stream`, or the element's own); inside a tap this unlocks playback. */
  playAgent(stream = null) {
    const audio = this.ui.audio;
    if (stream) audio.srcObject = stream; // the element must play it for analysers to hear it
    audio.play().catch(() => {});
  }

  /** Silence the agent here at once (a barge-in) or let it be heard again. */
  silenceAgent(silent) {
    this.ui.audio.muted = silent;
  }

  /** Meter each stream given that is not metered yet; kept off the connect path. */
  showMeters(mic, remote) {
    if (mic && !this.meters.showing("you")) this.meters.show("you", mic);
    if (remote && !this.meters.showing("agent")) this.meters.show("agent", remote);
  }
}
