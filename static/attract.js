// The attract screen: while nobody is in a conversation (idle before the first visitor, paused
// after the idle hang-up) the page shows the venue's name and logo and a large invitation that
// cycles through "Tap to talk" / "Say hello" in every configured language. A tap anywhere on it
// starts a call as the Start button does. Its animation is CSS only (transform and opacity, run
// by the compositor; none with reduced motion): the one timer here turns the invitation over.

/** The states in which the page invites a conversation (an error needs the visitor: it is shown). */
const INVITING = new Set(["idle", "paused"]);
const CYCLE_MS = 3500; // each invitation stays this long

/**
 * What to say, in order: the config's `invitations`, a `{lang, tap, say}` for each configured
 * language (languages.py invitations()).
 * @param {{lang: string, tap: string, say: string}[] | undefined} invitations
 * @returns {{text: string, lang: string}[]}
 */
export function phrases(invitations) {
  return (invitations ?? []).flatMap(({ lang, tap, say }) => [tap, say].map((text) => ({ text, lang })));
}

/** The attract screen (the template's #attract), shown while the page waits for a visitor. */
export class Attract {
  /**
   * @param {HTMLElement} element #attract (a button); its `.invite` holds the template's own invitations
   *   (marked data-i18n="attract.tap" / "attract.say"), used when the config lists none
   * @param {unknown} invitations the page config's `invitations`, if any
   */
  constructor(element, invitations) {
    this.element = element;
    this.main = element.closest("main");
    const invite = element.querySelector(".invite");
    const listed = phrases(invitations);
    if (listed.length) invite.replaceChildren(...listed.map(phrase));
    this.invitations = [...invite.children];
    this.current = 0;
    this.timer = 0;
    /** @type {((shown: boolean) => void)[]} */
    this.listeners = [];
    this.shown = !element.hidden;
    this.#cycle();
  }

  /** Call `start` when a visitor taps the attract screen (a button: Enter and Space too). */
  bind(start) {
    this.element.addEventListener("click", () => this.shown && start());
  }

  /** Tell `listener(shown)` each time the attract screen appears or goes. */
  listen(listener) {
    this.listeners.push(listener);
    listener(this.shown);
  }

  /** The page's state changed (messages.js STATES): shown while it invites a conversation. */
  showState(state) {
    const shown = INVITING.has(state);
    if (shown === this.shown) return;
    this.shown = shown;
    this.element.hidden = !shown;
    this.main.classList.toggle("attracting", shown);
    this.#cycle();
    for (const listener of this.listeners) listener(shown);
  }

  /** Turn the invitations over while shown (one timer, every CYCLE_MS), not while hidden. */
  #cycle() {
    clearInterval(this.timer);
    this.timer = 0;
    this.#turn(this.current);
    if (!this.shown || this.invitations.length < 2) return;
    this.timer = setInterval(() => this.#turn((this.current + 1) % this.invitations.length), CYCLE_MS);
  }

  /** Show invitation `index` (the others are transparent, and hidden from screen readers). */
  #turn(index) {
    this.current = index;
    this.invitations.forEach((node, i) => {
      node.classList.toggle("current", i === index);
      node.setAttribute("aria-hidden", String(i !== index));
    });
  }
}

function phrase({ text, lang }) {
  return Object.assign(document.createElement("span"), { className: "invitation", textContent: text, lang });
}
