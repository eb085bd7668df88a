// The player: avatar video + WebGL2 mouth render + DINet_mini (ONNX, wasm) pasted into each frame,
// driven by speech played through an AudioContext (file mode) or streamed by the server (stream mode).
//
// Clocks: the video frame index comes from requestVideoFrameCallback (mediaTime x 25); the mouth row
// from the audio clock: the AudioContext time that will be *heard* when the frame is displayed
// (getOutputTimestamp maps context time to performance time), minus the speech start, x 25.

import { loadPack } from './pack.js';
import { MouthRendererGL } from './gl.js';
import { cropTo128, glTensor, pasteDelta, sourceTensor, videoFrameRect } from './imageops.js';
import { AudioStep, FPS, MiniPipeline, SAMPLES_PER_FRAME, loadOrt } from './models.js';
import { StreamClient } from './stream.js';
import { decodeAllFrames } from './mp4.js';

const REST = new Float32Array(6); // coefficients of the mouth at rest
const RECT_CACHE_BYTES = 96 * 1024 * 1024; // mouth-rect pixels kept across video loops

/** Mono 16 kHz 16-bit PCM RIFF/WAVE bytes -> Float32Array (int16 / 32768), or null for anything else. */
export function readPcm16Wav(bytes) {
  const v = new DataView(bytes);
  const tag = (o) => String.fromCharCode(v.getUint8(o), v.getUint8(o + 1), v.getUint8(o + 2), v.getUint8(o + 3));
  if (bytes.byteLength < 44 || tag(0) !== 'RIFF' || tag(8) !== 'WAVE') return null;
  let fmt = null;
  for (let o = 12; o + 8 <= bytes.byteLength;) {
    const id = tag(o);
    const size = v.getUint32(o + 4, true);
    if (id === 'fmt ') {
      fmt = { format: v.getUint16(o + 8, true), channels: v.getUint16(o + 10, true), rate: v.getUint32(o + 12, true),
        bits: v.getUint16(o + 22, true) };
    } else if (id === 'data') {
      if (!fmt || fmt.format !== 1 || fmt.channels !== 1 || fmt.rate !== 16000 || fmt.bits !== 16) return null;
      const n = Math.floor(Math.min(size, bytes.byteLength - o - 8) / 2);
      const out = new Float32Array(n);
      for (let i = 0; i < n; i++) out[i] = v.getInt16(o + 8 + 2 * i, true) / 32768;
      return out;
    }
    o += 8 + size + (size & 1);
  }
  return null;
}

function now() {
  return performance.now();
}

export class Player {
  constructor(canvas, { threads = 1, onStatus = () => {}, video = null } = {}) {
    this.canvas = canvas;
    this.ctx2d = canvas.getContext('2d');
    this.threads = threads;
    this.onStatus = onStatus;
    // rVFC needs a video in the document: the page passes a (visually hidden) <video>
    this.video = video || document.body.appendChild(document.createElement('video'));
    this.video.muted = true;
    this.video.loop = true;
    this.video.playsInline = true;
    this.video.preload = 'auto';
    this.audio = null;
    this.speech = null; // {start: context time, rows: [Float32Array]} in file mode
    this.stream = null;
    this.busy = false;
    this.running = false;
    this.headless = false; // true: compose frames without drawing them (bench/bench_web.py's pipeline-only phase)
    this.stats = { frames: 0, dropped: 0, ms: [] };
    this.frameLog = [];
  }

  async init() {
    const res = await fetch('/api/models');
    const desc = await res.json();
    if (!res.ok) throw new Error(desc.error || `GET /api/models: ${res.status}`);
    this.desc = desc;
    this.ort = await loadOrt(desc, this.threads);
    this.audioStep = await AudioStep.create(this.ort, desc);
    this.onStatus('models loaded');
  }

  audioContext() {
    if (!this.audio) this.audio = new AudioContext({ sampleRate: 16000, latencyHint: 'interactive' });
    if (this.audio.state === 'suspended') this.audio.resume();
    return this.audio;
  }

  /** Load pack `name` from the server (refused with a PackError when the player cannot use it). */
  async setPack(name) {
    this.stop();
    const pack = await loadPack(`/packs/${encodeURIComponent(name)}/`, this.desc.models);
    this.renderer = new MouthRendererGL(pack.mesh, pack.bsTable);
    this.pipeline = await MiniPipeline.create(this.ort, this.desc, pack.refData);
    this.pack = pack;
    this.rectCache = new Map();
    this.rectCacheBytes = 0;
    this.video.src = pack.videoUrl;
    await new Promise((resolve, reject) => {
      this.video.onloadeddata = resolve;
      this.video.onerror = () => reject(new Error(`cannot play the pack's video ${pack.videoUrl}`));
    });
    await this.prefetchRects();
    this.canvas.width = this.video.videoWidth;
    this.canvas.height = this.video.videoHeight;
    this.ctx2d.drawImage(this.video, 0, 0);
    this.onStatus(`avatar ${name}: ${pack.frameCount} frames`);
  }

  /**
   * Read every frame's mouth rect once, from a software decode of the pack's video (WebCodecs), so
   * the frame loop never reads the playing video back. Without WebCodecs (or on a decode error)
   * the rects are read lazily from the playing video instead.
   */
  async prefetchRects() {
    const pack = this.pack;
    if (typeof VideoDecoder === 'undefined') return;
    const t0 = now();
    try {
      const bytes = await (await fetch(pack.videoUrl)).arrayBuffer();
      const n = await decodeAllFrames(bytes, async (index, frame) => {
        if (index >= pack.frameCount) return;
        const [x0, y0, x1, y1] = pack.rects.subarray(4 * index, 4 * index + 4);
        const pixels = await videoFrameRect(frame, [x0, y0, x1, y1]);
        const srcRgb = cropTo128(pixels, x1 - x0, y1 - y0);
        this.rectCache.set(index, { pixels, srcRgb, source: sourceTensor(srcRgb) });
        this.rectCacheBytes += pixels.length;
        if (index % 25 === 0) this.onStatus(`reading the avatar's mouth: frame ${index} of ${pack.frameCount}`);
      });
      this.prefetchMs = now() - t0;
      if (n !== pack.frameCount) console.warn(`the pack's video has ${n} frames, the pack describes ${pack.frameCount}`);
    } catch (e) {
      console.warn(`reading the mouth rects up front failed (${e.message}); they are read while playing`);
      this.rectCache = new Map();
      this.rectCacheBytes = 0;
    }
  }

  /** Time (s) of the speech heard at performance time `displayMs`, or null when nothing plays. */
  speechTimeAt(displayMs) {
    if (!this.audio) return null;
    const ts = this.audio.getOutputTimestamp();
    let ctxTime = this.audio.currentTime;
    if (ts.performanceTime > 0) ctxTime = ts.contextTime + (displayMs - ts.performanceTime) / 1000;
    return ctxTime;
  }

  coefficientsAt(ctxTime) {
    if (this.speech && ctxTime !== null) {
      const row = Math.floor((ctxTime - this.speech.start) * FPS);
      if (row >= 0 && row < this.speech.rows.length) return { row, coeffs: this.speech.rows[row] };
      return { row, coeffs: REST };
    }
    if (this.stream && ctxTime !== null) return this.stream.coefficientsAt(ctxTime);
    return { row: null, coeffs: REST };
  }

  /**
   * One output frame: the mouth of video frame `index` re-rendered with `coeffs`, pasted into
   * `image` (a WebCodecs VideoFrame of that frame) and drawn on the canvas. Returns timings in ms.
   */
  async compose(image, index, coeffs) {
    const pack = this.pack;
    const t0 = now();
    const [x0, y0, x1, y1] = pack.rects.subarray(4 * index, 4 * index + 4);
    const w = x1 - x0;
    const h = y1 - y0;
    // The avatar video loops, so each frame's mouth rect is read back once and kept (a read-back of a
    // decoded frame is the costliest step on software GL): about 160 kB per frame.
    let cached = this.rectCache.get(index);
    if (!cached) {
      const pixels = await videoFrameRect(image, [x0, y0, x1, y1]);
      const srcRgb = cropTo128(pixels, w, h);
      cached = { pixels, srcRgb, source: sourceTensor(srcRgb) };
      if (this.rectCacheBytes + pixels.length <= RECT_CACHE_BYTES) {
        this.rectCache.set(index, cached);
        this.rectCacheBytes += pixels.length;
      }
    }
    const rect = new ImageData(new Uint8ClampedArray(cached.pixels), w, h);
    const { srcRgb, source } = cached;
    const t1 = now();
    const gl = this.renderer.render(pack.poses[index], pack.points[index], coeffs);
    const glLabel = glTensor(gl.label);
    const glWarp = glTensor(gl.warp);
    const t2 = now();
    const out = await this.pipeline.run(source, glLabel, glWarp);
    const t3 = now();
    const before = new Uint8ClampedArray(rect.data);
    pasteDelta(rect.data, w, h, srcRgb, out);
    if (this.overlay) {
      // the <video> itself is shown; only the mouth rect is drawn, on a small canvas laid over it
      this._drawOverlay(rect, x0, y0, w, h);
    } else if (!this.headless) {
      this.ctx2d.drawImage(image, 0, 0);
      this.ctx2d.putImageData(rect, x0, y0);
    }
    const t4 = now();
    return { rect: [x0, y0, x1, y1], before, after: rect.data, ms: { crop: t1 - t0, gl: t2 - t1, network: t3 - t2, paste: t4 - t3, total: t4 - t0 } };
  }

  /**
   * Overlay display (?display=overlay): the page shows the playing <video> and draws only the mouth
   * rect on a canvas positioned over it, so no full frame is rasterised per frame (on software GL
   * that raster is what limits the frame rate). The rect can lag the video by the compose time.
   */
  useOverlay(container) {
    const video = this.video;
    video.style.cssText = 'position:static;width:auto;height:80vh;opacity:1;display:block';
    this.overlay = document.createElement('canvas');
    this.overlay.style.cssText = 'position:absolute;pointer-events:none';
    container.appendChild(this.overlay);
    this.overlayCtx = this.overlay.getContext('2d');
    this.canvas.style.display = 'none';
  }

  _drawOverlay(rect, x0, y0, w, h) {
    const c = this.overlay;
    if (c.width !== w || c.height !== h) {
      c.width = w;
      c.height = h;
    }
    const sx = this.video.clientWidth / this.video.videoWidth;
    const sy = this.video.clientHeight / this.video.videoHeight;
    c.style.left = `${this.video.offsetLeft + x0 * sx}px`;
    c.style.top = `${this.video.offsetTop + y0 * sy}px`;
    c.style.width = `${w * sx}px`;
    c.style.height = `${h * sy}px`;
    this.overlayCtx.putImageData(rect, 0, 0);
  }

  async _onVideoFrame(nowMs, meta) {
    if (!this.running) return;
    this.video.requestVideoFrameCallback((t, m) => this._onVideoFrame(t, m));
    if (this.busy) {
      this.stats.dropped += 1;
      return;
    }
    this.busy = true;
    try {
      const index = Math.min(this.pack.frameCount - 1, Math.round(meta.mediaTime * FPS));
      const ctxTime = this.speechTimeAt(meta.expectedDisplayTime);
      const { row, coeffs } = this.coefficientsAt(ctxTime);
      const frame = new VideoFrame(this.video);
      let res;
      try {
        res = await this.compose(frame, index, coeffs);
      } finally {
        frame.close();
      }
      this.stats.frames += 1;
      this.stats.ms.push(res.ms);
      if (this.stats.ms.length > 2000) this.stats.ms.shift();
      const speechT = this.speech && ctxTime !== null ? ctxTime - this.speech.start : null;
      this.frameLog.push({ display: meta.expectedDisplayTime, mediaTime: meta.mediaTime, index, ctxTime, speechT, row });
      if (this.frameLog.length > 5000) this.frameLog.shift();
    } finally {
      this.busy = false;
    }
  }

  /** Start the avatar video loop (idle mouth until speech plays). */
  async start() {
    if (this.running) return;
    this.running = true;
    this.audioContext();
    this.video.requestVideoFrameCallback((t, m) => this._onVideoFrame(t, m));
    await this.video.play();
  }

  stop() {
    this.running = false;
    this.video.pause();
    this.stopSpeech();
  }

  stopSpeech() {
    if (this.speechSource) {
      try { this.speechSource.stop(); } catch (e) { /* already stopped */ }
      this.speechSource = null;
    }
    this.speech = null;
  }

  /**
   * Decode audio bytes to 16 kHz mono Float32Array: a 16-bit PCM wav at 16 kHz (what the server
   * stores) is read exactly (int16 / 32768, as the Python front end); anything else through
   * decodeAudioData (the browser's decoder and resampler).
   */
  async decode(bytes) {
    const pcm = readPcm16Wav(bytes);
    if (pcm) return pcm;
    const buf = await this.audioContext().decodeAudioData(bytes.slice(0));
    const out = new Float32Array(buf.length);
    for (let c = 0; c < buf.numberOfChannels; c++) {
      const ch = buf.getChannelData(c);
      for (let i = 0; i < out.length; i++) out[i] += ch[i] / buf.numberOfChannels;
    }
    return out;
  }

  /** File mode: compute the mouth rows of the speech in the browser, then play it lip-synced. */
  async playSpeech(bytes, { delay = 0.3 } = {}) {
    this.stopSpeech();
    const samples = await this.decode(bytes);
    const t0 = now();
    const rows = await this.audioStep.coefficientsForWaveform(samples);
    this.lastAudioMs = now() - t0;
    const ctx = this.audioContext();
    const buffer = ctx.createBuffer(1, samples.length, 16000);
    buffer.copyToChannel(samples, 0);
    const src = ctx.createBufferSource();
    src.buffer = buffer;
    src.connect(ctx.destination);
    if (this.tap) src.connect(this.tap);
    const start = ctx.currentTime + delay;
    src.start(start);
    this.speechSource = src;
    this.speech = { start, rows, duration: samples.length / 16000 };
    await this.start();
    this.onStatus(`speaking: ${(samples.length / 16000).toFixed(2)} s, ${rows.length} frames`);
    return { start, frames: rows.length, duration: samples.length / 16000, audioMs: this.lastAudioMs };
  }

  /** Stream mode: connect to the server's websocket (speech + coefficients arrive together). */
  async connectStream(url) {
    this.stopSpeech();
    this.stream = new StreamClient(this.audioContext(), url, { onStatus: this.onStatus, tap: () => this.tap });
    await this.stream.open();
    await this.start();
    return this.stream;
  }

  /** Test hook: compose video frame `index` with `coeffs` (seeks the paused video). */
  async renderStill(index, coeffs) {
    this.running = false;
    this.video.pause();
    const target = (index + 0.5) / FPS;
    await new Promise((resolve) => {
      this.video.onseeked = resolve;
      this.video.currentTime = target;
    });
    const frame = new VideoFrame(this.video);
    try {
      return await this.compose(frame, index, Float32Array.from(coeffs));
    } finally {
      frame.close();
    }
  }
}
