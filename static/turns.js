// GPT-Live's transcript fragments as turns: one caption line per turn and side, and one line in
// the terminal when a turn is over. Fragments have no done events (openai-live.md §2.2, §6), so a
// turn ends on a quiet gap, when the other side starts, or when no fragment follows for a while.

// Between one fragment's end_ms and the next one's start_ms: a new turn (pipecat, LiveKit).
const GAP_MS = 800;
// No next fragment this long after one was spoken: the turn is over. Longer than the gap, so a
// fragment that arrives late (a busy device, a slow network) still continues its line.
const SILENCE_MS = 2_000;
const MAX_FRAGMENT_MS = 10_000; // a fragment claiming longer still ends its turn in time

/** Both sides' turns under way, fed with `session.{input,output}_transcript.delta` fragments. */
export class Turns {
  /**
   * @param {import("./captions.js").Captions} captions
   * @param {(role: "user" | "agent", text: string) => void} finished a turn is over, with its text
   */
  constructor(captions, finished) {
    this.captions = captions;
    this.finished = finished;
    /** @type {{user: Turn | null, agent: Turn | null}} */
    this.open = { user: null, agent: null };
    this.count = 0; // turn ids stay unique across calls: the captions keep earlier calls' lines
  }

  /**
   * One fragment of `role`'s speech.
   * @param {"user" | "agent"} role
   * @param {{delta?: string, start_ms?: number, end_ms?: number}} fragment
   */
  add(role, { delta, start_ms: start, end_ms: end }) {
    if (typeof delta !== "string" || !delta) return;
    this.#finish(role === "user" ? "agent" : "user");
    let turn = this.open[role];
    start = Number.isFinite(start) ? start : (turn?.end ?? 0);
    end = Number.isFinite(end) ? Math.max(start, end) : start;
    if (turn && start - turn.end > GAP_MS) {
      this.#finish(role);
      turn = null;
    }
    turn ??= this.open[role] = { id: `live-${role}-${++this.count}`, text: "", end, timer: 0 };
    turn.text += delta;
    turn.end = Math.max(turn.end, end);
    if (role === "user") this.captions.userText(turn.id, turn.text);
    else this.captions.agentDelta(turn.id, delta);
    clearTimeout(turn.timer);
    turn.timer = setTimeout(() => this.#finish(role), SILENCE_MS + Math.min(end - start, MAX_FRAGMENT_MS));
  }

  /** The call is gone: whatever was said is over. */
  finishAll() {
    this.#finish("user");
    this.#finish("agent");
  }

  #finish(role) {
    const turn = this.open[role];
    if (!turn) return;
    this.open[role] = null;
    clearTimeout(turn.timer);
    if (role === "agent") this.captions.agentDone(turn.id);
    const text = turn.text.trim();
    if (text) this.finished(role, text);
  }
}

/**
 * @typedef {object} Turn
 * @property {string} id its caption line
 * @property {string} text so far
 * @property {number} end end_ms of its latest fragment
 * @property {number} timer ends it when nothing follows
 */
