// What each state and each failure is: its words are the translation tables' (i18n.js).

import { has, t } from "./i18n.js";

/** The page's states (main[data-state]); each one's name is t(`state.${state}`). */
export const STATES = [
  "idle",
  "starting",
  "connecting",
  "listening",
  "user-speaking",
  "thinking",
  "working",
  "agent-speaking",
  "reconnecting",
  "paused",
  "error",
  "closed",
];


/** A failure the page can explain: `code` picks the message, `retry` says if waiting helps. */
export class Problem extends Error {
  constructor(code, { message = "", status = 0, retryAfterMs = 0, retry = true } = {}) {
    super(message || code);
    this.code = code;
    this.status = status;
    this.retryAfterMs = retryAfterMs;
    this.retry = retry;
  }
}

// The failures that waiting does not mend (the visitor or the operator must act). Each code's
// words are problem.<code>.title and .help (help optional: "Retrying by itself.") in i18n/*.json.
const NO_RETRY = new Set(["insecure", "mic_denied", "no_mic", "mic_busy", "no_webrtc", "unauthorized"]);

/** {title, help, retry} for a Problem (or any error), never empty, never a stack trace. */
export function explain(problem) {
  const code = problem?.code;
  if (has(`problem.${code}.title`)) {
    const help = has(`problem.${code}.help`) ? t(`problem.${code}.help`) : t("problem.retrying");
    return { title: t(`problem.${code}.title`), help, retry: !NO_RETRY.has(code) };
  }
  const retry = problem?.retry ?? true;
  const detail = problem?.message && problem.message !== code ? `${problem.message} ` : "";
  return {
    title: t("problem.unknown.title"),
    help: detail + (retry ? t("problem.retrying") : t("problem.tap_start")),
    retry,
  };
}

/** A getUserMedia failure as a Problem. */
export function micProblem(error) {
  switch (error?.name) {
    case "NotAllowedError":
    case "SecurityError":
      return new Problem("mic_denied", { retry: false });
    case "NotFoundError":
    case "OverconstrainedError":
      return new Problem("no_mic", { retry: false });
    case "NotReadableError":
    case "AbortError":
      return new Problem("mic_busy", { retry: false });
    default:
      return new Problem("mic_denied", { message: String(error?.message || error), retry: false });
  }
}
