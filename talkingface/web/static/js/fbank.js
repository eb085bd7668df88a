// The audio front end in the browser: 80-bin log-mel filter bank with the options of
// talkingface/audio_features.py (kaldi-native-fbank): 16 kHz, 50 ms window, 20 ms hop, dither 0,
// snip_edges false, povey window, pre-emphasis 0.97, DC removal, 1024-point FFT, power spectrum,
// mel banks from 20 Hz to Nyquist, log with a float-epsilon floor. Computed in float64.
//
// Framing (as the Python streaming front end): frame j spans samples [320 j - 240, 320 j + 560);
// the left edge of frame 0 is reflected; a frame is emitted only once its whole window has been
// received, so offline (one call) and streaming (many calls) give the same frames.

export const SAMPLE_RATE = 16000;
export const FRAME_LENGTH = 800; // 50 ms
export const FRAME_SHIFT = 320; // 20 ms
export const NUM_BINS = 80;
const FFT_SIZE = 1024;
const PREEMPH = 0.97;
const LOW_FREQ = 20.0;
const FLOAT_EPS = 1.1920928955078125e-7;

function melScale(f) {
  return 1127.0 * Math.log(1.0 + f / 700.0);
}

function poveyWindow(n) {
  const w = new Float64Array(n);
  const a = (2 * Math.PI) / (n - 1);
  for (let i = 0; i < n; i++) w[i] = Math.pow(0.5 - 0.5 * Math.cos(a * i), 0.85);
  return w;
}

// Triangular mel filters over FFT bins 0..FFT_SIZE/2-1 (kaldi's MelBanks layout): {first, weights}.
function melBanks() {
  const nfft = FFT_SIZE / 2;
  const binWidth = SAMPLE_RATE / FFT_SIZE;
  const melLow = melScale(LOW_FREQ);
  const melHigh = melScale(SAMPLE_RATE / 2);
  const delta = (melHigh - melLow) / (NUM_BINS + 1);
  const banks = [];
  for (let b = 0; b < NUM_BINS; b++) {
    const left = melLow + b * delta;
    const center = melLow + (b + 1) * delta;
    const right = melLow + (b + 2) * delta;
    let first = -1;
    const w = [];
    for (let i = 0; i < nfft; i++) {
      const mel = melScale(binWidth * i);
      if (mel > left && mel < right) {
        const weight = mel <= center ? (mel - left) / (center - left) : (right - mel) / (right - center);
        if (first < 0) first = i;
        w[i - first] = weight;
      }
    }
    banks.push({ first, weights: Float64Array.from(w, (v) => v || 0) });
  }
  return banks;
}

// In-place iterative radix-2 complex FFT of length FFT_SIZE.
class FFT {
  constructor(n) {
    this.n = n;
    this.rev = new Uint32Array(n);
    const bits = Math.log2(n);
    for (let i = 0; i < n; i++) {
      let r = 0;
      for (let b = 0; b < bits; b++) r |= ((i >> b) & 1) << (bits - 1 - b);
      this.rev[i] = r;
    }
    this.cos = new Float64Array(n / 2);
    this.sin = new Float64Array(n / 2);
    for (let i = 0; i < n / 2; i++) {
      this.cos[i] = Math.cos((-2 * Math.PI * i) / n);
      this.sin[i] = Math.sin((-2 * Math.PI * i) / n);
    }
  }

  transform(re, im) {
    const n = this.n;
    for (let i = 0; i < n; i++) {
      const j = this.rev[i];
      if (j > i) {
        let t = re[i]; re[i] = re[j]; re[j] = t;
        t = im[i]; im[i] = im[j]; im[j] = t;
      }
    }
    for (let size = 2; size <= n; size *= 2) {
      const half = size / 2;
      const step = n / size;
      for (let start = 0; start < n; start += size) {
        for (let k = 0; k < half; k++) {
          const wr = this.cos[k * step];
          const wi = this.sin[k * step];
          const a = start + k;
          const b = a + half;
          const xr = re[b] * wr - im[b] * wi;
          const xi = re[b] * wi + im[b] * wr;
          re[b] = re[a] - xr; im[b] = im[a] - xi;
          re[a] += xr; im[a] += xi;
        }
      }
    }
  }
}

const WINDOW = poveyWindow(FRAME_LENGTH);
const BANKS = melBanks();
const FFT1024 = new FFT(FFT_SIZE);

// One frame's log-mel energies from its FRAME_LENGTH raw samples (Float64Array, modified).
function frameFeatures(frame) {
  let mean = 0;
  for (let i = 0; i < FRAME_LENGTH; i++) mean += frame[i];
  mean /= FRAME_LENGTH;
  for (let i = 0; i < FRAME_LENGTH; i++) frame[i] -= mean;
  for (let i = FRAME_LENGTH - 1; i > 0; i--) frame[i] -= PREEMPH * frame[i - 1];
  frame[0] -= PREEMPH * frame[0];
  const re = new Float64Array(FFT_SIZE);
  const im = new Float64Array(FFT_SIZE);
  for (let i = 0; i < FRAME_LENGTH; i++) re[i] = frame[i] * WINDOW[i];
  FFT1024.transform(re, im);
  const power = new Float64Array(FFT_SIZE / 2);
  for (let i = 0; i < FFT_SIZE / 2; i++) power[i] = re[i] * re[i] + im[i] * im[i];
  const out = new Float32Array(NUM_BINS);
  for (let b = 0; b < NUM_BINS; b++) {
    const { first, weights } = BANKS[b];
    let e = 0;
    for (let k = 0; k < weights.length; k++) e += weights[k] * power[first + k];
    out[b] = Math.log(Math.max(e, FLOAT_EPS));
  }
  return out;
}

/** Incremental fbank: accept(samples in [-1, 1]) -> array of newly completed Float32Array(80) frames. */
export class StreamingFbank {
  constructor() {
    this.samples = new Float32Array(0); // everything received (frames reach back only 240 samples)
    this.offset = 0; // index in the stream of this.samples[0]
    this.total = 0;
    this.next = 0;
  }

  get framesEmitted() {
    return this.next;
  }

  accept(block) {
    const keepFrom = Math.max(0, FRAME_SHIFT * this.next - 240 - this.offset);
    const kept = this.samples.subarray(keepFrom);
    const merged = new Float32Array(kept.length + block.length);
    merged.set(kept);
    merged.set(block, kept.length);
    this.offset += keepFrom;
    this.samples = merged;
    this.total += block.length;
    const out = [];
    const frame = new Float64Array(FRAME_LENGTH);
    for (;;) {
      const start = FRAME_SHIFT * this.next - 240;
      if (start + FRAME_LENGTH > this.total) break;
      for (let i = 0; i < FRAME_LENGTH; i++) {
        let s = start + i;
        if (s < 0) s = -s - 1; // reflect the left edge (only frame 0)
        frame[i] = this.samples[s - this.offset];
      }
      out.push(frameFeatures(frame));
      this.next += 1;
    }
    return out;
  }
}

/** All complete frames of a waveform (Float32Array) as an array of Float32Array(80). */
export function computeFbank(samples) {
  return new StreamingFbank().accept(samples);
}
