// Reconnect delays: exponential back-off with jitter, never giving up.

const BASE_MS = 500;
const CAP_MS = 30_000;
const MAX_WAIT_MS = 10 * 60_000; // the longest wait anyone may ask for (a Retry-After, a blocked network)
// A connection that lasted this long counts as healthy: the next failure starts from BASE_MS.
export const STABLE_MS = 10_000;

/** How long to wait before each reconnect: doubling from BASE_MS up to CAP_MS until reset(). */
export class Backoff {
  constructor() {
    this.attempt = 0;
  }

  /** The wait before the next attempt: half fixed, half random ("equal jitter"), and at least
   * `minimumMs` (a server's Retry-After; at most MAX_WAIT_MS). */
  next(minimumMs = 0) {
    const ceiling = Math.min(CAP_MS, BASE_MS * 2 ** this.attempt);
    this.attempt += 1;
    const delay = ceiling / 2 + Math.random() * (ceiling / 2);
    return Math.max(Math.min(minimumMs, MAX_WAIT_MS), Math.round(delay));
  }

  reset() {
    this.attempt = 0;
  }
}
