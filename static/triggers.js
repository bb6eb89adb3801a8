// The operator's triggers (POST /api/start, /api/stop, /api/announce): server events for every
// page, with no call id, whatever its call. `start` wakes the page as a tap does (greeted, if a
// greeting is configured: someone rang); `announce` wakes it if need be, ungreeted (the
// announcement is the first thing said), and the agent says it as soon as the call is up; `stop`
// hangs up and leaves the page paused (a tap or a voice wakes it).

/** What a Session does for the operator. */
export class Triggers {
  /**
   * @param {import("./engine.js").Engine} engine the page's voice API
   * @param {{state: () => string, wanted: () => boolean, up: () => (import("./call.js").Call | null),
   *   start: (opts: {greet: boolean}) => void, rest: (detail: string) => void}} session its state;
   *   whether a conversation is wanted; its call, once up; how to start one; how to pause
   */
  constructor(engine, session) {
    this.engine = engine;
    this.session = session;
    /** @type {string | null} the announcement to say once the call is up */
    this.announcement = null;
  }

  /** One trigger from the server. */
  hear({ type, text }) {
    const { session } = this;
    if (type === "stop") return session.wanted() && session.rest("detail.tap_or_speak");
    if (type === "announce" && typeof text === "string") this.announcement = text;
    else if (type !== "start") return;
    const call = session.up();
    if (call) this.up(call);
    else if (!session.wanted() || session.state() === "error") session.start({ greet: type === "start" });
  }

  /** `call` is up: the announcement waiting (if any) is said on it. */
  up(call) {
    const text = this.announcement;
    this.announcement = null;
    if (text) this.engine.say(call, `Say this to the visitor now, word for word, then listen: "${text}"`);
  }
}
