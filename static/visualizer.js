// Two live level meters (you, the agent) from one AudioContext and one animation loop.
//
// Cheap on purpose, a kiosk runs it for days: a small FFT, buffers allocated once, at most
// 30 frames a second (10 with reduced motion), nothing drawn while hidden or silent.

const BARS = 24;
const FPS = 30;
const REDUCED_FPS = 10;
const SILENT = 0.01; // bar height (0..1) under which a meter counts as quiet
// loudness() (RMS) of speech near the microphone, ~-34 dBFS: not a room's hum or fans.
export const SPEECH_RMS = 0.02;

class Meter {
  constructor(canvas, color) {
    this.canvas = canvas;
    this.g = canvas.getContext("2d", { alpha: true });
    this.color = color;
    this.analyser = null;
    this.source = null;
    this.bins = null;
    this.bars = new Float32Array(BARS);
    this.edges = new Uint16Array(BARS + 1);
    this.visible = true;
    this.blank = false; // the canvas is already cleared
    this.level = 0; // 0..1: the tallest bar
    this.wave = null; // time-domain samples, for loudness()
  }

  connect(context, stream) {
    this.disconnect();
    if (!this.analyser) {
      this.analyser = context.createAnalyser();
      this.analyser.fftSize = 256;
      this.analyser.smoothingTimeConstant = 0.6;
      this.bins = new Uint8Array(this.analyser.frequencyBinCount);
      this.wave = new Float32Array(this.analyser.fftSize);
      // Bars on a log scale from ~90 Hz to ~8 kHz, where speech lives.
      const rate = context.sampleRate / this.analyser.fftSize;
      for (let i = 0; i <= BARS; i++) {
        const hz = 90 * (8000 / 90) ** (i / BARS);
        this.edges[i] = Math.min(this.bins.length, Math.max(i, Math.round(hz / rate)));
      }
    }
    this.source = context.createMediaStreamSource(stream);
    this.source.connect(this.analyser); // analysis only: never to the speakers
  }

  disconnect() {
    this.source?.disconnect();
    this.source = null;
  }

  /** Update bars from the analyser; returns true when something must be drawn. */
  sample() {
    if (!this.source) {
      this.bars.fill(0);
      this.level = 0;
      return !this.blank;
    }
    this.analyser.getByteFrequencyData(this.bins);
    let loudest = 0;
    for (let b = 0; b < BARS; b++) {
      let peak = 0;
      for (let i = this.edges[b]; i < this.edges[b + 1]; i++) if (this.bins[i] > peak) peak = this.bins[i];
      const value = peak / 255;
      this.bars[b] = value > this.bars[b] ? value : this.bars[b] * 0.85 + value * 0.15;
      if (this.bars[b] > loudest) loudest = this.bars[b];
    }
    this.level = loudest;
    return loudest > SILENT || !this.blank;
  }

  draw(reduced) {
    const { canvas, g } = this;
    const w = canvas.width;
    const h = canvas.height;
    g.clearRect(0, 0, w, h);
    if (this.level <= SILENT) {
      this.blank = true;
      return;
    }
    this.blank = false;
    g.fillStyle = this.color;
    g.beginPath();
    if (reduced) {
      g.rect(0, h * 0.35, w * this.level, h * 0.3); // a plain level bar
    } else {
      const slot = w / BARS;
      const gap = Math.max(1, slot * 0.25);
      for (let b = 0; b < BARS; b++) {
        const bar = Math.max(2, this.bars[b] * h);
        g.rect(b * slot + gap / 2, (h - bar) / 2, slot - gap, bar);
      }
    }
    g.fill();
  }

  resize() {
    const ratio = window.devicePixelRatio || 1;
    const width = Math.round(this.canvas.clientWidth * ratio);
    const height = Math.round(this.canvas.clientHeight * ratio);
    if (width && height && (this.canvas.width !== width || this.canvas.height !== height)) {
      this.canvas.width = width;
      this.canvas.height = height;
      this.blank = false;
    }
  }
}

export class Visualizer {
  constructor(canvases) {
    this.context = null;
    this.meters = {};
    for (const [name, { canvas, color }] of Object.entries(canvases)) this.meters[name] = new Meter(canvas, color);
    this.all = Object.values(this.meters);
    this.frame = 0;
    this.last = 0;
    this.reduced = matchMedia("(prefers-reduced-motion: reduce)");
    this.tick = (now) => this.#tick(now);

    const resize = new ResizeObserver(() => this.all.forEach((m) => m.resize()));
    const seen = new IntersectionObserver((entries) => {
      for (const entry of entries) {
        const meter = this.all.find((m) => m.canvas === entry.target);
        if (meter) meter.visible = entry.isIntersecting;
      }
      this.#schedule();
    });
    for (const meter of this.all) {
      resize.observe(meter.canvas);
      seen.observe(meter.canvas);
    }
  }

  /** The shared AudioContext, made on first use. */
  #audioContext() {
    this.context ??= new AudioContext({ latencyHint: "interactive" });
    this.resume();
    return this.context;
  }

  /** Wake a suspended context (browsers suspend one made without a user gesture). */
  resume() {
    if (this.context?.state === "suspended") this.context.resume().catch(() => {});
  }

  show(name, stream) {
    this.meters[name].connect(this.#audioContext(), stream);
    this.#schedule();
  }

  showing(name) {
    return Boolean(this.meters[name].source);
  }

  hide(name) {
    this.meters[name].disconnect();
    this.#schedule();
  }

  /** RMS of a meter's signal right now (0..1): lets a paused page notice someone speaking. */
  loudness(name) {
    const meter = this.meters[name];
    if (!meter.source) return 0;
    meter.analyser.getFloatTimeDomainData(meter.wave);
    let sum = 0;
    for (let i = 0; i < meter.wave.length; i++) sum += meter.wave[i] * meter.wave[i];
    return Math.sqrt(sum / meter.wave.length);
  }

  #schedule() {
    if (!this.frame && this.all.some((m) => m.visible && (m.source || !m.blank))) {
      this.frame = requestAnimationFrame(this.tick);
    }
  }

  #tick(now) {
    this.frame = 0;
    const reduced = this.reduced.matches;
    const interval = 1000 / (reduced ? REDUCED_FPS : FPS);
    if (now - this.last >= interval - 2) {
      this.last = now;
      for (const meter of this.all) {
        if (meter.visible && meter.sample()) meter.draw(reduced);
      }
    }
    this.#schedule();
  }
}
