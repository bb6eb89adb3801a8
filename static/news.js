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
   * @param {{state: () => string, setState: (state: string) => void, rest: (detail: string) => void}} session
   *   the page's state now, a way to set it, and the way to end the call and wait (paused)
   */
  constructor(shown, session) {
    this.shown = shown;
    this.session = session;
    this.working = false; // the server runs a tool for this call
    /** @type {{spoke: boolean} | null} the server asked to end the call: its goodbye is under way */
    this.ending = null;
    this.shownAnswered = false; // the agent has answered since something was shown
    this.timers = { working: 0, goodbye: 0 };
  }

  /** One event from the server about this call. */
  hear(event) {
    if (event.type === "tool") this.#work(event.state === "running");
    else if (event.type === "show") {
      this.shown.show(event);
      this.shownAnswered = false;
    } else if (event.type === "end" && event.now) {
      this.session.rest("detail.paused"); // ended by staff (the status page): no goodbye, no calling again
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
