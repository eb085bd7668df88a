// Stream mode: the server sends speech and the mouth coefficients of each 40 ms frame together over a
// websocket (/ws/drive); the page plays the speech with WebAudio and draws the coefficients that
// belong to the audio being heard. Wire format: docs/WEB_PLAYER.md ("Stream protocol").
//   binary, server -> page: "TFAV" | u32 utterance | u32 frame | u16 n_coeffs | u16 n_samples |
//                           f32[n_coeffs] | i16[n_samples]   (little-endian)
//   text JSON, page -> server: {"type": "say", "audio": ID} | {"type": "clear"} | {"type": "end"} | {"type": "ping"};
//   binary, page -> server: int16 16 kHz mono PCM to lip-sync (pushed speech, e.g. from a TTS in the page).

export const MAGIC = 0x56414654; // "TFAV" read as a little-endian u32
const FRAME_SECONDS = 0.04;
const START_DELAY = 0.15; // jitter buffer before the first frame of a burst plays

export function parseFrame(buffer) {
  const view = new DataView(buffer);
  if (buffer.byteLength < 16 || view.getUint32(0, true) !== MAGIC) return null;
  const utt = view.getUint32(4, true);
  const frame = view.getUint32(8, true);
  const nCoeffs = view.getUint16(12, true);
  const nSamples = view.getUint16(14, true);
  const coeffs = new Float32Array(buffer.slice(16, 16 + 4 * nCoeffs));
  const pcm = new Int16Array(buffer.slice(16 + 4 * nCoeffs, 16 + 4 * nCoeffs + 2 * nSamples));
  return { utt, frame, coeffs, pcm };
}

export class StreamClient {
  constructor(audioContext, url, { onStatus = () => {}, tap = () => null } = {}) {
    this.ctx = audioContext;
    this.url = url;
    this.onStatus = onStatus;
    this.tap = tap;
    this.playHead = 0;
    this.timeline = []; // {t, utt, frame, coeffs}: frame audible from context time t for 40 ms
    this.sources = [];
    this.received = []; // {utt, frame, coeffs, arrival (ms)} for tests and stats
    this.messages = [];
    this.ended = new Map(); // utt -> frames
  }

  open() {
    return new Promise((resolve, reject) => {
      const ws = new WebSocket(new URL(this.url, location.href.replace(/^http/, 'ws')).href);
      ws.binaryType = 'arraybuffer';
      this.ws = ws;
      ws.onmessage = (ev) => this._onMessage(ev);
      ws.onerror = () => reject(new Error('websocket error'));
      ws.onclose = () => this.onStatus('stream closed');
      this._ready = resolve;
    });
  }

  _onMessage(ev) {
    if (typeof ev.data === 'string') {
      const msg = JSON.parse(ev.data);
      this.messages.push(msg);
      if (msg.type === 'ready' && this._ready) {
        this.info = msg;
        this._ready(msg);
        this._ready = null;
      } else if (msg.type === 'end') {
        this.ended.set(msg.utt, msg.frames);
      } else if (msg.type === 'error') {
        this.onStatus(`server: ${msg.error}`);
      }
      return;
    }
    const f = parseFrame(ev.data);
    if (!f) return;
    f.arrival = performance.now();
    this.received.push({ utt: f.utt, frame: f.frame, coeffs: Array.from(f.coeffs), arrival: f.arrival });
    this._schedule(f);
  }

  _schedule(f) {
    const ctx = this.ctx;
    if (this.playHead < ctx.currentTime + 0.02) this.playHead = ctx.currentTime + START_DELAY;
    const buf = ctx.createBuffer(1, f.pcm.length, 16000);
    const data = buf.getChannelData(0);
    for (let i = 0; i < f.pcm.length; i++) data[i] = f.pcm[i] / 32768;
    const src = ctx.createBufferSource();
    src.buffer = buf;
    src.connect(ctx.destination);
    const tap = this.tap();
    if (tap) src.connect(tap);
    src.start(this.playHead);
    src.onended = () => {
      const k = this.sources.indexOf(src);
      if (k >= 0) this.sources.splice(k, 1);
    };
    this.sources.push(src);
    this.timeline.push({ t: this.playHead, utt: f.utt, frame: f.frame, coeffs: f.coeffs });
    this.playHead += f.pcm.length / 16000;
  }

  /** The coefficients of the audio heard at context time `t` (rest when nothing plays). */
  coefficientsAt(t) {
    while (this.timeline.length && this.timeline[0].t + FRAME_SECONDS <= t - 1) this.timeline.shift();
    for (const e of this.timeline) {
      if (t >= e.t && t < e.t + FRAME_SECONDS) return { row: e.frame, coeffs: e.coeffs, utt: e.utt };
    }
    return { row: null, coeffs: new Float32Array(6) };
  }

  send(obj) {
    this.ws.send(JSON.stringify(obj));
  }

  say(audioId) {
    this.send({ type: 'say', audio: audioId });
  }

  /** Barge-in: stop what is playing now and ask the server to drop what it has not sent. */
  clear() {
    for (const s of this.sources) {
      try { s.stop(); } catch (e) { /* not started */ }
    }
    this.sources = [];
    this.timeline = [];
    this.playHead = 0;
    this.send({ type: 'clear' });
  }

  close() {
    this.ws.close();
  }
}
