// The microphone: one MediaStream kept across reconnects (so the browser asks once), and the
// user's Mute applied to every track it gets.

import { micProblem, Problem } from "./messages.js";

/** The page's microphone stream and mute choice. */
export class Microphone {
  /**
   * @param {MediaStreamConstraints} constraints what to ask getUserMedia for
   * @param {() => void} onChange called when the stream is replaced or released (its meter follows)
   */
  constructor(constraints, onChange) {
    this.constraints = constraints;
    this.onChange = onChange;
    /** @type {MediaStream | null} */
    this.stream = null;
    this.muted = false; // the user's choice
  }

  /**
   * A live track: the one we have, else from `asked` (a getUserMedia already under way) or a new
   * request. Rejects with a Problem; with "stopped" when `wanted()` turned false meanwhile.
   * @param {Promise<MediaStream> | null} asked
   * @param {{wanted: () => boolean, onEnded: () => void}} hooks `onEnded`: the device went away
   * @returns {Promise<MediaStreamTrack>}
   */
  track(asked, { wanted, onEnded }) {
    const live = this.stream?.getAudioTracks().find((t) => t.readyState === "live");
    if (live) return Promise.resolve(live);
    return (asked ?? navigator.mediaDevices.getUserMedia(this.constraints)).then(
      (stream) => {
        if (!wanted()) {
          stream.getTracks().forEach((t) => t.stop()); // stopped while the prompt was open
          throw new Problem("stopped", { retry: false });
        }
        this.onChange(); // a new device: the meter follows it
        this.stream = stream;
        const track = stream.getAudioTracks()[0];
        track.enabled = !this.muted;
        track.onended = onEnded;
        return track;
      },
      (error) => {
        throw micProblem(error);
      },
    );
  }

  /** Stop the tracks: the browser's recording indicator goes off. */
  release() {
    this.stream?.getTracks().forEach((t) => t.stop());
    this.stream = null;
    this.onChange();
  }

  setMuted(muted) {
    this.muted = muted;
    for (const track of this.stream?.getAudioTracks() ?? []) track.enabled = !muted;
  }
}
