// The conversation as text: what you said (input transcription) and what the agent says
// (streamed transcript deltas), keyed by item id because the two arrive in any order. The agent's
// newest line is `current` (style.css shows it large, the lines before it smaller and dimmer).

import { t } from "./i18n.js";

const MAX_LINES = 60;

export class Captions {
  constructor(root, hint) {
    this.root = root;
    this.hint = hint;
    this.lines = new Map(); // item id -> element
    this.current = null; // the agent's newest line
    // The newest line stays in view unless the reader scrolled back; a resize (a rotated screen,
    // the panel beside the captions appearing) rewraps the lines, so it follows then too.
    this.pinned = true;
    root.addEventListener("scroll", () => (this.pinned = this.#atEnd()), { passive: true });
    new ResizeObserver(() => this.#follow()).observe(root);
  }

  /** You started speaking: hold your place in the conversation until the transcript arrives. */
  userStarted(itemId) {
    this.#line(itemId, "user").classList.add("pending");
  }

  userText(itemId, text) {
    const line = this.#line(itemId, "user");
    line.classList.remove("pending");
    delete line.dataset.i18n; // words now, not "(not understood)"
    line.textContent = text.trim() || "…";
    this.#follow();
  }

  userFailed(itemId) {
    const line = this.lines.get(itemId);
    if (line?.classList.contains("pending")) {
      line.classList.remove("pending");
      line.classList.add("unclear");
      line.dataset.i18n = "caption.not_understood"; // i18n.js redraws it in another language
      line.textContent = t("caption.not_understood");
      this.#follow();
    }
  }

  agentDelta(itemId, delta) {
    const line = this.#line(itemId, "agent");
    if (line.classList.contains("cut")) return; // interrupted: keep it where it stopped
    line.setAttribute("aria-busy", "true");
    line.firstChild.nodeValue += delta;
    this.#follow();
  }

  /** The agent's final transcript; shorter than what was streamed when it was cut off. */
  agentDone(itemId, transcript) {
    const line = this.lines.get(itemId);
    if (!line) return;
    line.removeAttribute("aria-busy");
    if (typeof transcript === "string" && transcript && !line.classList.contains("cut")) {
      line.firstChild.nodeValue = transcript;
    }
    this.#follow();
  }

  /** Mark the agent's line as interrupted where it stopped. */
  agentCut(itemId) {
    const line = this.lines.get(itemId);
    if (!line || line.classList.contains("cut")) return;
    line.classList.add("cut");
    line.removeAttribute("aria-busy");
    line.firstChild.nodeValue = line.firstChild.nodeValue.trimEnd();
    line.lastChild.hidden = false;
    this.#follow();
  }

  text(itemId) {
    return this.lines.get(itemId)?.firstChild.nodeValue ?? "";
  }

  #line(itemId, role) {
    let line = this.lines.get(itemId);
    if (line) return line;
    this.hint?.remove();
    this.hint = null;
    line = document.createElement("p");
    line.className = `line ${role}`;
    line.append(document.createTextNode(""));
    if (role === "agent") {
      const mark = document.createElement("span");
      mark.className = "cut-mark";
      mark.dataset.i18n = "caption.interrupted";
      mark.textContent = t("caption.interrupted");
      mark.hidden = true;
      line.append(mark);
      this.current?.classList.remove("current");
      line.classList.add("current");
      this.current = line;
    }
    this.root.append(line);
    this.lines.set(itemId, line);
    while (this.lines.size > MAX_LINES) {
      const [oldest, element] = this.lines.entries().next().value;
      element.remove();
      this.lines.delete(oldest);
    }
    this.#follow();
    return line;
  }

  #atEnd() {
    const root = this.root;
    return root.scrollHeight - root.scrollTop - root.clientHeight < 8;
  }

  #follow() {
    if (this.pinned) this.root.scrollTop = this.root.scrollHeight;
  }
}
