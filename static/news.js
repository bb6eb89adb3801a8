// What the server says about the current call (over the reporter's socket), whatever the engine:
// a tool is running ("working on it"), something to show beside the captions (until the
// conversation moves on), the end of the conversation (after the agent's goodbye, or at once).

// The server asked to end the call (the agent's end_conversation): its goodbye gets this long at
// most (the server hangs the call up itself a little later, whatever the page does).
const GOODBYE_MAX_MS = 15_000;
// "Working on it" ends with the server's notice; if that is lost (the page's socket dropped), after
// this long (a tool's longest timeout, and some).
const WORKING_MAX_MS = 130_000;

/** One call's news from the server, and how it bends the conversation's states (session.js). */
export class CallNews {
  /**
   * @param {import("./shown.js").Shown} shown the panel beside the captions
   * @param {{state: () => string, setState: (state: string) => void, rest: (detail: string) => void,
   *   closed: () => void, lost: () => void}} session the page's state now, a way to set it, and the
   *   ways to end the call: wait (paused), closed for today, or start afresh (a new call)
   */
  constructor(shown, session) {
    this.shown = shown;
    this.session = session;
    this.working = false; // the server runs a tool for this call
    /** @type {{spoke: boolean} | null} the server asked to end the call: its goodbye is under way */
    this.ending = null;
    this.shownAnswered = false; // the agent has answered since something was shown
    this.timers = { working: 0, goodbye: 0 };
    /** @type {string | null} the call last lost (dropped): the server's end of it may come after */
    this.lostId = null;
  }

  /** The call `callId` dropped (the page reconnects). */
  lost(callId) {
    this.lostId = callId ?? null;
  }

  /** Whether `event` is the server's end of the call just lost, heard after its drop while the page
   * reconnects: it still counts (no calling again), unless it asks for a new call (under way). */
  late(event) {
    const { type, call_id: id, why } = event;
    const fresh = why === "upstream" || why === "unknown";
    return type === "end" && id === this.lostId && this.session.state() === "reconnecting" && !fresh;
  }

  /** One event from the server about this call. */
  hear(event) {
    if (event.type === "tool") this.#work(event.state === "running");
    else if (event.type === "show") {
      this.shown.show(event);
      this.shownAnswered = false;
    } else if (event.type === "end" && event.now) {
      this.#ended(event.why);
    } else if (event.type === "end" && !this.ending) {
      // The goodbye is the agent's next speech: what it says now may be a "one moment" said before
      // the tool ran (GOODBYE_MAX_MS bounds a goodbye that runs on from it unbroken).
      this.ending = { spoke: false };
      this.timers.goodbye = setTimeout(() => this.session.rest("detail.tap_or_speak"), GOODBYE_MAX_MS);
    }
  }

  /**
   * The conversation moves to `next`: the state to show instead (null: the call ended here).
   * @param {string} next
   * @returns {string | null}
   */
  turn(next) {
    if (this.working && (next === "listening" || next === "thinking")) next = "working";
    if (this.ending) {
      if (next === "agent-speaking") this.ending.spoke = true;
      else if (this.ending.spoke) {
        this.session.rest("detail.goodbye"); // said (or cut short by the visitor)
        return null;
      }
    }
    if (this.shown.showing) {
      // Shown until the conversation moves on: the visitor's next turn after the agent's answer.
      if (next === "agent-speaking") this.shownAnswered = true;
      else if (next === "user-speaking" && this.shownAnswered) this.shown.clear();
    }
    return next;
  }

  /** The call is gone: nothing runs, nothing ends, nothing is shown. */
  reset() {
    this.working = false;
    this.ending = null;
    clearTimeout(this.timers.working);
    clearTimeout(this.timers.goodbye);
    this.shown.clear();
  }

  /** The server ended the call (or is ending it) at once; `why`: its reason (unknown: the status
   * page's Hang up). The page hangs up its side and does not take it for a dropped line. */
  #ended(why) {
    if (why === "budget") this.session.closed(); // the day's budget is spent: closed for today
    else if (why === "upstream" || why === "unknown") this.session.lost(); // OpenAI's end, or a call not counted here: a new one
    else this.session.rest(why === "limit" ? "detail.goodbye" : "detail.tap_or_speak"); // no calling again
  }

  /** A tool runs ("working on it") or has finished (the agent answers next). */
  #work(on) {
    this.working = on;
    clearTimeout(this.timers.working);
    if (on) this.timers.working = setTimeout(() => this.#work(false), WORKING_MAX_MS);
    const state = this.session.state();
    if (on && (state === "listening" || state === "thinking")) this.session.setState("working");
    else if (!on && state === "working") this.session.setState("thinking");
  }
}
