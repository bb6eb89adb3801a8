// Reconnect delays: exponential back-off with jitter, never giving up.

export const BASE_MS = 500;
export const CAP_MS = 30_000;
// A connection that lasted this long counts as healthy: the next failure starts from BASE_MS.
export const STABLE_MS = 10_000;

export class Backoff {
  constructor({ base = BASE_MS, cap = CAP_MS, random = Math.random } = {}) {
    this.base = base;
    this.cap = cap;
    this.random = random;
    this.attempt = 0;
  }

  /** The wait before the next attempt: half fixed, half random ("equal jitter"). */
  next(minimumMs = 0) {
    const ceiling = Math.min(this.cap, this.base * 2 ** this.attempt);
    this.attempt += 1;
    const delay = ceiling / 2 + this.random() * (ceiling / 2);
    return Math.min(this.cap, Math.max(minimumMs, Math.round(delay)));
  }

  reset() {
    this.attempt = 0;
  }
}
