// What each state and each failure looks like to a person: one place for every word on the page.

export const STATES = {
  idle: "Ready",
  starting: "Starting…",
  connecting: "Connecting…",
  listening: "Listening",
  "user-speaking": "You're speaking",
  thinking: "Thinking…",
  working: "Working on it…",
  "agent-speaking": "Agent speaking",
  reconnecting: "Reconnecting",
  paused: "Paused",
  error: "Problem",
};

// ---- Opening hours (hours.js): the page's new strings, together here to move into the translation
// tables. "Open Mon–Fri 9:00–17:00. Opens tomorrow at 9:00." (day names come from Intl.)
STATES.closed = "Closed";
export const HOURS_TEXT = {
  open: "Open",
  none: "Closed every day",
  opens: "Opens",
  today: "today",
  tomorrow: "tomorrow",
  at: "at",
  and: " and ",
};
// ---- end of the opening hours' strings

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

const HELP = {
  insecure: {
    title: "This page needs HTTPS for the microphone.",
    help: "Browsers only allow the microphone on secure pages. Open the setup page once to trust this server's certificate, then come back.",
    retry: false,
  },
  mic_denied: {
    title: "Microphone access was blocked.",
    help: "Allow the microphone for this site (the icon in the address bar, or the browser's site settings), then tap Retry now.",
    retry: false,
  },
  no_mic: {
    title: "No microphone found.",
    help: "Connect a microphone. The page picks it up as soon as it appears.",
    retry: false,
  },
  mic_busy: {
    title: "The microphone is in use by another program.",
    help: "Close the other program that records sound, then tap Retry now.",
    retry: false,
  },
  no_webrtc: {
    title: "This browser cannot make voice calls.",
    help: "Use a current Chrome, Edge, Firefox or Safari.",
    retry: false,
  },
  no_api_key: {
    title: "The server has no OpenAI API key.",
    help: "Set OPENAI_API_KEY where voicekiosk runs and restart it. This page will connect by itself.",
  },
  upstream_auth: {
    title: "OpenAI rejected the server's API key.",
    help: "Check OPENAI_API_KEY where voicekiosk runs. This page keeps trying.",
  },
  upstream_forbidden: {
    title: "OpenAI refused the server's key for this agent.",
    help: "Check the project's access to the model and the voice where voicekiosk runs. This page keeps trying.",
  },
  upstream_rate_limited: { title: "Busy — OpenAI asked us to slow down.", help: "Retrying by itself." },
  too_many_requests: { title: "Busy — too many sessions from this device.", help: "Retrying by itself." },
  busy: { title: "Busy — every line is taken.", help: "Retrying by itself." },
  upstream_timeout: { title: "OpenAI is slow to answer.", help: "Retrying by itself." },
  upstream_unreachable: { title: "The server cannot reach OpenAI.", help: "Check its internet connection. Retrying by itself." },
  upstream_error: { title: "OpenAI had an error.", help: "Retrying by itself." },
  upstream_rejected: { title: "OpenAI refused the session.", help: "Check the model and settings on the server. Retrying by itself." },
  upstream_malformed: { title: "OpenAI sent an answer we cannot use.", help: "Retrying by itself." },
  unauthorized: {
    title: "This device is not allowed in yet.",
    help: "Scan the QR code shown in the voicekiosk terminal, or open the link with its access token.",
    retry: false,
  },
  offline: { title: "Cannot reach the voicekiosk server.", help: "Check the network. Retrying by itself." },
  // GPT-Live's fatal errors (openai-live.md §2.3): the session ends; a new one may work once fixed.
  insufficient_quota: {
    title: "OpenAI says the account is out of credit.",
    help: "Add credit to the OpenAI account of the key where voicekiosk runs. This page keeps trying.",
  },
  invalid_api_key: {
    title: "OpenAI rejected the server's API key.",
    help: "Check OPENAI_API_KEY where voicekiosk runs. This page keeps trying.",
  },
  account_deactivated: {
    title: "OpenAI has deactivated the server's account.",
    help: "Its owner must sort it out with OpenAI, or use another key where voicekiosk runs. This page keeps trying.",
  },
  billing_hard_limit_reached: {
    title: "The OpenAI account reached its spending limit.",
    help: "Raise the limit in the account's billing settings. This page keeps trying.",
  },
  dropped: { title: "The call dropped.", help: "Reconnecting by itself." },
  session_ended: { title: "The session reached its time limit.", help: "Starting a new one." },
  connect_timeout: { title: "The call did not connect.", help: "Retrying by itself." },
  no_media: {
    title: "The call cannot get through.",
    help: "This network may block the audio connection (UDP). Trying again every few minutes; tap Retry now to try at once.",
  },
};

/** {title, help, retry} for a Problem (or any error), never empty, never a stack trace. */
export function explain(problem) {
  const known = HELP[problem?.code];
  if (known) return { retry: true, ...known };
  const retry = problem?.retry ?? true;
  const detail = problem?.message && problem.message !== problem.code ? `${problem.message} ` : "";
  return {
    title: "Something went wrong.",
    help: detail + (retry ? "Retrying by itself." : "Tap Start to try again."),
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
