// Opening hours (the server's `hours` setting): outside them the page shows "closed", with the
// week's hours and when it opens, and makes no call (no microphone, no offer); it comes back by
// itself when it opens. A call running at closing time may finish: the page then shows closed
// instead of pausing (session.js asks `closed`).
//
// The server's clock decides. The page is told whether it is open and in how many milliseconds
// that changes (the page config, then GET /api/hours), never the hours to work out by its own
// clock (a phone abroad, a clock that is off): it asks again just after each change, and every
// few minutes besides, so a kiosk left running for weeks (asleep, throttled) cannot drift.

import { onLanguage, t } from "./i18n.js";

const RECHECK_MS = 5 * 60_000; // ask at least this often (setTimeout cannot wait for weeks anyway)
const RETRY_MS = 30_000; // the server did not answer: ask again after this
const AFTER_MS = 500; // ask this long after the change is due, so that it has happened

/**
 * What the server says (voicekiosk/hours.py, Hours.state).
 * @typedef {object} HoursState
 * @property {boolean} open
 * @property {string[][][]} week seven days, Monday first: [["09:00", "17:00"], ...] in the venue's time
 * @property {{in_ms: number, day: number, time: string, days_ahead: number} | null} next the next
 *   opening (closed) or closing (open), and where it is in the venue's week
 */

/** The schedule as the server last told it, kept up to date; null state: always open. */
export class Hours {
  /** @param {{hours: HoursState | null, hours_url: string}} config the page config */
  constructor(config) {
    this.url = config.hours_url;
    /** @type {HoursState | null} */
    this.state = config.hours ?? null;
    this.timer = 0;
    this.element = document.getElementById("hours");
    /** @type {import("./session.js").Session | null} */
    this.session = null;
    if (!this.state) return;
    this.#show();
    this.#askIn(this.state.next?.in_ms);
    onLanguage(() => this.#show());
    addEventListener("visibilitychange", () => document.visibilityState === "visible" && this.#ask());
  }

  /** Closed now, as the server last said. */
  get closed() {
    return Boolean(this.state && !this.state.open);
  }

  /** `session` is closed while the kiosk is (now, and at each change from now on). */
  watch(session) {
    this.session = session;
    if (this.closed) session.stop("closed");
  }

  /** The server refused a call as closed: so it is; ask it when it opens. */
  refused() {
    this.state = { week: [], next: null, ...this.state, open: false };
    this.#show();
    this.#ask();
  }

  #askIn(ms) {
    clearTimeout(this.timer);
    const wait = typeof ms === "number" && ms >= 0 ? Math.min(ms + AFTER_MS, RECHECK_MS) : RECHECK_MS;
    this.timer = setTimeout(() => this.#ask(), wait);
  }

  async #ask() {
    let state;
    try {
      const response = await fetch(this.url, { cache: "no-store" });
      if (!response.ok) throw new Error(`HTTP ${response.status}`);
      state = await response.json();
    } catch {
      return this.#askIn(RETRY_MS - AFTER_MS); // keep what it said last
    }
    const wasClosed = this.closed;
    this.state = state;
    this.#show();
    this.#askIn(state?.next?.in_ms);
    if (this.closed !== wasClosed) this.#changed();
  }

  #changed() {
    const session = this.session;
    if (!session) return;
    if (!this.closed) {
      if (session.state !== "closed") return;
      session.stop(); // open: back to waiting for a visitor (or to talking, on a kiosk that starts so)
      if (session.config.autostart) session.start({ greet: false });
    } else if (!CALL_UP.has(session.state)) {
      session.stop("closed"); // a call under way may finish: it closes when it idles out
    }
  }

  /** "Open Mon–Fri 9:00–17:00, Sat 10:00–14:00. Opens tomorrow at 9:00." (shown while closed),
   * each day's hours and the next opening unbroken by a line's end. */
  #show() {
    if (!this.element || !this.state) return;
    const { week, next } = this.state;
    const groups = weekGroups(week);
    const nodes = groups.length ? [`${t("hours.open")} `] : [`${t("hours.none")}.`];
    groups.forEach((group, i) => nodes.push(...(i ? [", "] : []), unbroken(group)));
    if (groups.length) nodes.push(".");
    if (!this.state.open && next) nodes.push(" ", unbroken(opens(next), "next"));
    this.element.replaceChildren(...nodes);
  }
}

function unbroken(text, className = "") {
  return Object.assign(document.createElement("span"), { textContent: text, className });
}

const CALL_UP = new Set(["starting", "connecting", "listening", "user-speaking", "thinking", "agent-speaking", "working"]);

/** ["Mon–Fri 9:00–17:00", "Sat 10:00–14:00"]: days alike in a row merged, names in the page's language. */
function weekGroups(week) {
  const out = [];
  for (let day = 0; day < 7; ) {
    const same = JSON.stringify(week[day] ?? []);
    let last = day;
    while (last + 1 < 7 && JSON.stringify(week[last + 1] ?? []) === same) last += 1;
    if (week[day]?.length) {
      const days = last === day ? dayName(day) : `${dayName(day)}–${dayName(last)}`;
      out.push(`${days} ${week[day].map(([from, to]) => `${clock(from)}–${clock(to)}`).join(t("hours.and"))}`);
    }
    day = last + 1;
  }
  return out;
}

/** "Opens tomorrow at 9:00." in the page's language. */
function opens({ day, time, days_ahead }) {
  const named = days_ahead === 0 ? t("hours.today") : days_ahead === 1 ? t("hours.tomorrow") : dayName(day);
  return t("hours.opens", { day: named, time: clock(time) });
}

/** Weekday `day` (0: Monday) in the page's language, short: 2024-01-01 was a Monday. */
function dayName(day) {
  const format = new Intl.DateTimeFormat(document.documentElement.lang || undefined, { weekday: "short", timeZone: "UTC" });
  return format.format(Date.UTC(2024, 0, 1 + day));
}

/** "09:00" as "9:00". */
function clock(time) {
  return time.replace(/^0(\d)/, "$1");
}
