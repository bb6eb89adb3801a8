// What the page shows: the state line, the problem box, the controls, the agent's <audio>, the
// meters, the captions and what the agent shows beside them, and the attract screen while it
// waits for a visitor. It only draws; session.js decides.

import { Attract } from "./attract.js";
import { Captions } from "./captions.js";
import { onLanguage, t } from "./i18n.js";
import { explain } from "./messages.js";
import { Shown } from "./shown.js";
import { Visualizer } from "./visualizer.js";

const $ = (id) => document.getElementById(id);
// Words style.css shows (content:), as custom properties of <main>.
const CSS_WORDS = { "--says-you": "caption.you", "--says-agent": "caption.agent", "--muted-word": "state.muted" };

/** The page's elements, with one method for each thing the session shows. */
export class View {
  /**
   * @param {string} [setupUrl] the setup page, linked from the "needs HTTPS" problem
   * @param {unknown} [invitations] the attract screen's invitations (attract.js phrases())
   */
  constructor(setupUrl, invitations) {
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
    /** What the texts a language switch redraws show now: the state, the detail's words (a key
     * and its values, or text as it came), the Start button's key, the problem. */
    this.shows = {
      state: this.ui.main.dataset.state,
      detail: { key: "", vars: null, text: "" },
      start: "button.start",
      problem: null,
    };
    this.languages = [...document.querySelectorAll("[data-language]")];
    onLanguage((code) => this.#relabel(code));
    this.#relabel(document.documentElement.lang);
    this.attract = new Attract($("attract"), invitations);
    // An AudioContext made without a gesture starts suspended: any later tap or key wakes it.
    for (const kind of ["pointerdown", "keydown"]) addEventListener(kind, () => this.meters.resume(), { passive: true });
  }

  /** Call `start`, `mute` or `retry` when that button is pressed, `language(code)` for a language's,
   * `invite` on a tap on the attract screen. */
  bind({ start, mute, retry, language, invite }) {
    this.ui.start.onclick = start;
    this.ui.mute.onclick = mute;
    this.ui.retry.onclick = retry;
    for (const button of this.languages) button.onclick = () => language(button.dataset.language);
    this.attract.bind(invite);
  }

  /** @param {string} state one of messages.js STATES; tests read it from main's data-state */
  showState(state) {
    const { main, label, retry } = this.ui;
    main.dataset.state = state;
    this.shows.state = state;
    this.attract.showState(state);
    label.textContent = t(`state.${state}`);
    if (state !== "reconnecting" && state !== "paused") this.showDetail("");
    retry.hidden = !(state === "reconnecting" || state === "error");
    if (state === "idle" || state === "error" || state === "paused") this.#startReads("button.start");
  }

  /** The small text after the state's name, as it came (an API's message). */
  showDetail(text) {
    this.shows.detail = { key: "", vars: null, text };
    this.ui.detail.textContent = text;
  }

  /** The small text after the state's name: the words of `key` (i18n/*.json). */
  showDetailKey(key, vars = null) {
    this.shows.detail = { key, vars, text: "" };
    this.ui.detail.textContent = t(key, vars);
  }

  /** Seconds left until `due` (a performance.now() time), as the detail. */
  showCountdown(due) {
    const seconds = Math.max(0, Math.ceil((due - performance.now()) / 1000));
    if (seconds) this.showDetailKey("detail.in_seconds", { seconds });
    else this.showDetailKey("detail.now");
  }

  /** Explain a Problem, or hide the box for null. */
  showProblem(problem) {
    const { problem: box, problemTitle, problemHelp, problemLink } = this.ui;
    this.shows.problem = problem;
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
      problemLink.textContent = t("problem.setup_link");
    }
    box.hidden = false;
  }

  showMuted(muted) {
    const { main, mute } = this.ui;
    mute.setAttribute("aria-pressed", String(muted));
    mute.textContent = muted ? t("button.unmute") : t("button.mute");
    main.classList.toggle("muted", muted);
  }

  /** The Start button becomes Stop (back to Start with the idle, paused and error states). */
  offerStop() {
    this.#startReads("button.stop");
  }

  #startReads(key) {
    this.shows.start = key;
    this.ui.start.textContent = t(key);
  }

  /** The language is now `code`: redraw the texts drawn here, mark its button. */
  #relabel(code) {
    const { state, detail, start, problem } = this.shows;
    if (state) this.ui.label.textContent = t(`state.${state}`);
    if (detail.key) this.ui.detail.textContent = t(detail.key, detail.vars);
    this.ui.start.textContent = t(start);
    this.showMuted(this.ui.main.classList.contains("muted"));
    if (problem) this.showProblem(problem);
    for (const [name, key] of Object.entries(CSS_WORDS)) {
      this.ui.main.style.setProperty(name, JSON.stringify(t(key)));
    }
    for (const button of this.languages) {
      button.setAttribute("aria-pressed", String(button.dataset.language === code));
    }
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
