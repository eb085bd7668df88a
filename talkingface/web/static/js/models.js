// The two networks in onnxruntime-web's wasm backend: the audio model's LSTM step and the DINet_mini
// pipeline (warp + label swap + DINet_mini + interior blend). The server describes them at
// /api/models: {models: {dinet_mini, audio}, pipeline: {url, inputs: {source, gl, gl_warp, ref}, output},
// audio_step: {url, inputs: {fbank, h, c}, outputs: {coeffs, h, c}, state_shape}, lookahead_steps, ort}.

import { SAMPLE_RATE, StreamingFbank } from './fbank.js';

export const FPS = 25;
export const SAMPLES_PER_FRAME = SAMPLE_RATE / FPS; // 640

let ortModule = null;

/** Import onnxruntime-web (wasm backend) from the server's vendored copy. */
export async function loadOrt(desc, threads = 1) {
  if (!ortModule) {
    const base = new URL(desc.ort.base, location.href).href;
    ortModule = await import(base + desc.ort.module);
    ortModule.env.wasm.wasmPaths = base; // must be absolute
    ortModule.env.wasm.numThreads = threads;
  }
  return ortModule;
}

async function createSession(ort, url) {
  return ort.InferenceSession.create(new URL(url, location.href).href, { executionProviders: ['wasm'] });
}

/** The audio model's step: 2 fbank frames + LSTM state -> one row of coefficients. */
export class AudioStep {
  static async create(ort, desc) {
    const step = new AudioStep();
    step.ort = ort;
    step.desc = desc.audio_step;
    step.lookahead = desc.lookahead_steps;
    step.session = await createSession(ort, desc.audio_step.url);
    step.reset();
    return step;
  }

  reset() {
    const shape = this.desc.state_shape;
    const size = shape.reduce((a, b) => a * b, 1);
    this.h = new this.ort.Tensor('float32', new Float32Array(size), shape);
    this.c = new this.ort.Tensor('float32', new Float32Array(size), shape);
  }

  /** pair: Float32Array(160) = 2 x 80 fbank frames -> Float32Array(coefficients). */
  async step(pair) {
    const { inputs, outputs } = this.desc;
    const feeds = {
      [inputs.fbank]: new this.ort.Tensor('float32', pair, [1, 2, 80]),
      [inputs.h]: this.h,
      [inputs.c]: this.c,
    };
    const res = await this.session.run(feeds);
    this.h = res[outputs.h];
    this.c = res[outputs.c];
    return Float32Array.from(res[outputs.coeffs].data);
  }

  /**
   * Whole-file coefficients, as AudioModel.interface_wav: samples (Float32Array, 16 kHz, [-1, 1]) ->
   * array of N = ceil(len / 640) rows; row t belongs to video frame t.
   */
  async coefficientsForWaveform(samples) {
    const n = Math.ceil(samples.length / SAMPLES_PER_FRAME);
    const steps = n + this.lookahead;
    const padded = new Float32Array((steps + 1) * SAMPLES_PER_FRAME);
    padded.set(samples);
    const frames = new StreamingFbank().accept(padded).slice(0, 2 * steps);
    this.reset();
    const rows = [];
    const pair = new Float32Array(160);
    for (let t = 0; t < steps; t++) {
      pair.set(frames[2 * t], 0);
      pair.set(frames[2 * t + 1], 80);
      const row = await this.step(pair);
      if (t >= this.lookahead) rows.push(row);
    }
    return rows;
  }
}

/** The DINet_mini pipeline on 128 x 128 crops with the pack's reference feature. */
export class MiniPipeline {
  static async create(ort, desc, refData) {
    const p = new MiniPipeline();
    p.ort = ort;
    p.desc = desc.pipeline;
    p.session = await createSession(ort, desc.pipeline.url);
    p.ref = new ort.Tensor('float32', Float32Array.from(refData), [1, 20, 18, 18]);
    return p;
  }

  /** source, gl, glWarp: planar Float32Array(4 x 128 x 128) in [0, 1] -> Float32Array(4 x 128 x 128). */
  async run(source, gl, glWarp) {
    const shape = [1, 4, 128, 128];
    const { inputs, output } = this.desc;
    const feeds = {
      [inputs.source]: new this.ort.Tensor('float32', source, shape),
      [inputs.gl]: new this.ort.Tensor('float32', gl, shape),
      [inputs.gl_warp]: new this.ort.Tensor('float32', glWarp, shape),
      [inputs.ref]: this.ref,
    };
    const res = await this.session.run(feeds);
    return res[output].data;
  }
}
