// Who is speaking in a GPT-Live call, which sends no speech events (openai-live.md §6): the agent
// by its voice's level, you by the microphone's (and by your transcript's fragments). Both may
// speak at once. The meters are read ten times a second while a call is up, never otherwise.

import { SPEECH_RMS } from "./visualizer.js";

const POLL_MS = 100;
// The agent's stream is digital silence between utterances: any voice is well above this.
const AGENT_RMS = 0.01;
// This long under the level: that side has stopped (pauses between words are shorter).
const QUIET_MS = 400;

/** When each side was last heard, and since when it has been speaking. */
export class Speaking {
  /**
   * @param {import("./visualizer.js").Visualizer} meters the "you" and "agent" meters
   * @param {() => void} onPoll after each reading
   */
  constructor(meters, onPoll) {
    this.meters = meters;
    this.onPoll = onPoll;
    this.timer = 0;
    this.heard = { you: -Infinity, agent: -Infinity };
    this.since = { you: -Infinity, agent: -Infinity }; // the start of the current stretch of speech
  }

  /** Read the meters from now on (the call is up). */
  start() {
    this.timer ||= setInterval(() => this.#poll(), POLL_MS);
  }

  /** Stop reading; nobody is speaking (the call is gone). */
  stop() {
    clearInterval(this.timer);
    this.timer = 0;
    this.heard = { you: -Infinity, agent: -Infinity };
    this.since = { you: -Infinity, agent: -Infinity };
  }

  /** @param {"you" | "agent"} who was heard just now */
  hear(who, now = performance.now()) {
    if (!this.is(who, now)) this.since[who] = now;
    this.heard[who] = now;
  }

  /** @param {"you" | "agent"} who is speaking (was heard within QUIET_MS) */
  is(who, now = performance.now()) {
    return now - this.heard[who] < QUIET_MS;
  }

  #poll() {
    const now = performance.now();
    if (this.meters.loudness("agent") > AGENT_RMS) this.hear("agent", now);
    if (this.meters.loudness("you") > SPEECH_RMS) this.hear("you", now);
    this.onPoll();
  }
}
