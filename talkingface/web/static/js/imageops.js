// Crop and paste of the 128 x 128 mouth crop, matching the Python pipeline:
//   crop:  talkingface.data.mouth_crop.standard_image (cv2.resize of the rect to 128: INTER_AREA when
//          the rect is wider than 128, else INTER_LINEAR);
//   paste: render_model_mini.paste_change (frame + cv2.resize(out - src, rect size, INTER_LINEAR)).
// Images are RGBA Uint8ClampedArray (ImageData layout); tensors are planar Float32Array.

export const MODEL_SIZE = 128;

// Area-resize weights of one axis (cv2's resizeArea): for each output index, [srcIndex, weight] pairs.
function areaTable(srcLen, dstLen) {
  const scale = srcLen / dstLen;
  const table = [];
  for (let d = 0; d < dstLen; d++) {
    const start = d * scale;
    const end = Math.min(start + scale, srcLen);
    const pairs = [];
    for (let s = Math.floor(start); s < Math.ceil(end - 1e-9); s++) {
      const w = (Math.min(end, s + 1) - Math.max(start, s)) / scale;
      if (w > 1e-9) pairs.push([s, w]);
    }
    table.push(pairs);
  }
  return table;
}

// Bilinear weights of one axis with half-pixel centres and clamped edges (cv2's INTER_LINEAR).
function linearTable(srcLen, dstLen) {
  const scale = srcLen / dstLen;
  const idx = new Int32Array(2 * dstLen);
  const wt = new Float32Array(2 * dstLen);
  for (let d = 0; d < dstLen; d++) {
    let f = (d + 0.5) * scale - 0.5;
    let s = Math.floor(f);
    f -= s;
    if (s < 0) { s = 0; f = 0; }
    if (s >= srcLen - 1) { s = srcLen - 1; f = 0; }
    idx[2 * d] = s;
    idx[2 * d + 1] = Math.min(s + 1, srcLen - 1);
    wt[2 * d] = 1 - f;
    wt[2 * d + 1] = f;
  }
  return { idx, wt };
}

const tableCache = new Map();
function cached(kind, a, b, make) {
  const key = `${kind}:${a}:${b}`;
  if (!tableCache.has(key)) tableCache.set(key, make(a, b));
  return tableCache.get(key);
}

/** rect pixels (RGBA, w x h) -> 128 x 128 RGB uint8 (Uint8Array, interleaved). */
export function cropTo128(rgba, w, h) {
  const out = new Uint8Array(MODEL_SIZE * MODEL_SIZE * 3);
  const tmp = new Float32Array(MODEL_SIZE * h * 3); // x pass: h rows x 128
  if (w > MODEL_SIZE) {
    const tx = cached('area', w, MODEL_SIZE, areaTable);
    const ty = cached('area', h, MODEL_SIZE, areaTable);
    for (let y = 0; y < h; y++) {
      for (let x = 0; x < MODEL_SIZE; x++) {
        let r = 0, g = 0, b = 0;
        for (const [s, wgt] of tx[x]) {
          const p = 4 * (y * w + s);
          r += wgt * rgba[p]; g += wgt * rgba[p + 1]; b += wgt * rgba[p + 2];
        }
        const q = 3 * (y * MODEL_SIZE + x);
        tmp[q] = r; tmp[q + 1] = g; tmp[q + 2] = b;
      }
    }
    for (let y = 0; y < MODEL_SIZE; y++) {
      for (let x = 0; x < MODEL_SIZE; x++) {
        let r = 0, g = 0, b = 0;
        for (const [s, wgt] of ty[y]) {
          const q = 3 * (s * MODEL_SIZE + x);
          r += wgt * tmp[q]; g += wgt * tmp[q + 1]; b += wgt * tmp[q + 2];
        }
        const o = 3 * (y * MODEL_SIZE + x);
        out[o] = Math.round(r); out[o + 1] = Math.round(g); out[o + 2] = Math.round(b);
      }
    }
    return out;
  }
  const tx = cached('lin', w, MODEL_SIZE, linearTable);
  const ty = cached('lin', h, MODEL_SIZE, linearTable);
  for (let y = 0; y < MODEL_SIZE; y++) {
    const y0 = ty.idx[2 * y], y1 = ty.idx[2 * y + 1], wy0 = ty.wt[2 * y], wy1 = ty.wt[2 * y + 1];
    for (let x = 0; x < MODEL_SIZE; x++) {
      const x0 = tx.idx[2 * x], x1 = tx.idx[2 * x + 1], wx0 = tx.wt[2 * x], wx1 = tx.wt[2 * x + 1];
      for (let c = 0; c < 3; c++) {
        const v = wy0 * (wx0 * rgba[4 * (y0 * w + x0) + c] + wx1 * rgba[4 * (y0 * w + x1) + c]) +
          wy1 * (wx0 * rgba[4 * (y1 * w + x0) + c] + wx1 * rgba[4 * (y1 * w + x1) + c]);
        out[3 * (y * MODEL_SIZE + x) + c] = Math.round(v);
      }
    }
  }
  return out;
}

/** 128 x 128 RGB uint8 -> 1x4x128x128 planar float in [0, 1] (alpha 1). */
export function sourceTensor(rgb, out) {
  const n = MODEL_SIZE * MODEL_SIZE;
  out = out || new Float32Array(4 * n);
  for (let i = 0; i < n; i++) {
    out[i] = rgb[3 * i] / 255;
    out[n + i] = rgb[3 * i + 1] / 255;
    out[2 * n + i] = rgb[3 * i + 2] / 255;
    out[3 * n + i] = 1;
  }
  return out;
}

/** 128 x 128 RGBA uint8 (GL read-back) -> 1x4x128x128 planar float in [0, 1]. */
export function glTensor(rgba, out) {
  const n = MODEL_SIZE * MODEL_SIZE;
  out = out || new Float32Array(4 * n);
  for (let i = 0; i < n; i++) {
    for (let c = 0; c < 4; c++) out[c * n + i] = rgba[4 * i + c] / 255;
  }
  return out;
}

/**
 * Paste the network's change into the rect pixels in place: rgba (w x h RGBA of the rect) +=
 * resize(out * 255 - src, w x h), rounded and clipped. out: planar 1x4x128x128 float in [0, 1];
 * src: 128 x 128 RGB uint8.
 */
export function pasteDelta(rgba, w, h, src, out) {
  const n = MODEL_SIZE * MODEL_SIZE;
  const delta = new Float32Array(3 * n);
  for (let i = 0; i < n; i++) {
    for (let c = 0; c < 3; c++) delta[3 * i + c] = out[c * n + i] * 255 - src[3 * i + c];
  }
  const tx = cached('lin', MODEL_SIZE, w, linearTable);
  const ty = cached('lin', MODEL_SIZE, h, linearTable);
  for (let y = 0; y < h; y++) {
    const y0 = ty.idx[2 * y], y1 = ty.idx[2 * y + 1], wy0 = ty.wt[2 * y], wy1 = ty.wt[2 * y + 1];
    for (let x = 0; x < w; x++) {
      const x0 = tx.idx[2 * x], x1 = tx.idx[2 * x + 1], wx0 = tx.wt[2 * x], wx1 = tx.wt[2 * x + 1];
      const p = 4 * (y * w + x);
      for (let c = 0; c < 3; c++) {
        const d = wy0 * (wx0 * delta[3 * (y0 * MODEL_SIZE + x0) + c] + wx1 * delta[3 * (y0 * MODEL_SIZE + x1) + c]) +
          wy1 * (wx0 * delta[3 * (y1 * MODEL_SIZE + x0) + c] + wx1 * delta[3 * (y1 * MODEL_SIZE + x1) + c]);
        rgba[p + c] = Math.round(rgba[p + c] + d); // Uint8ClampedArray clips
      }
    }
  }
}

// YUV -> RGB coefficients (Kr, Kb) of the matrices a decoder reports.
const MATRICES = { bt709: [0.2126, 0.0722], bt470bg: [0.299, 0.114], smpte170m: [0.299, 0.114], bt2020: [0.2627, 0.0593] };

/**
 * The RGBA pixels (Uint8ClampedArray, w x h) of `rect` = [x0, y0, x1, y1] of a WebCodecs VideoFrame,
 * converted from its planar YUV (I420 / NV12) in JS with the frame's own matrix and range, so only
 * the rect is read back (a canvas read-back of the whole frame costs hundreds of ms on software GL).
 * Falls back to a canvas read-back for other pixel formats.
 */
export async function videoFrameRect(frame, rect) {
  const [x0, y0, x1, y1] = rect;
  const w = x1 - x0;
  const h = y1 - y0;
  const fmt = frame.format;
  if (fmt !== 'NV12' && fmt !== 'I420') {
    const c = new OffscreenCanvas(w, h);
    const cx = c.getContext('2d', { willReadFrequently: true });
    cx.drawImage(frame, x0, y0, w, h, 0, 0, w, h);
    return cx.getImageData(0, 0, w, h).data;
  }
  // 4:2:0 planes need an even-aligned region
  const ax = x0 & ~1;
  const ay = y0 & ~1;
  const aw = Math.min(((x1 + 1) & ~1), frame.codedWidth) - ax;
  const ah = Math.min(((y1 + 1) & ~1), frame.codedHeight) - ay;
  const region = { x: ax, y: ay, width: aw, height: ah };
  const buf = new Uint8Array(frame.allocationSize({ rect: region }));
  const layout = await frame.copyTo(buf, { rect: region });
  const cs = frame.colorSpace || {};
  const [kr, kb] = MATRICES[cs.matrix] || MATRICES.bt709;
  const kg = 1 - kr - kb;
  const full = cs.fullRange === true;
  const ys = full ? 1 : 255 / 219;
  const cscale = full ? 1 : 255 / 224;
  const yoff = full ? 0 : 16;
  const crv = 2 * (1 - kr) * cscale;
  const cbu = 2 * (1 - kb) * cscale;
  const cgu = (2 * (1 - kb) * kb / kg) * cscale;
  const cgv = (2 * (1 - kr) * kr / kg) * cscale;
  const out = new Uint8ClampedArray(w * h * 4);
  const Y = layout[0];
  const dx = x0 - ax;
  const dy = y0 - ay;
  for (let y = 0; y < h; y++) {
    const yy = y + dy;
    const yRow = Y.offset + yy * Y.stride;
    for (let x = 0; x < w; x++) {
      const xx = x + dx;
      let u;
      let v;
      if (fmt === 'NV12') {
        const p = layout[1].offset + (yy >> 1) * layout[1].stride + 2 * (xx >> 1);
        u = buf[p] - 128;
        v = buf[p + 1] - 128;
      } else {
        u = buf[layout[1].offset + (yy >> 1) * layout[1].stride + (xx >> 1)] - 128;
        v = buf[layout[2].offset + (yy >> 1) * layout[2].stride + (xx >> 1)] - 128;
      }
      const l = (buf[yRow + xx] - yoff) * ys;
      const o = 4 * (y * w + x);
      out[o] = l + crv * v;
      out[o + 1] = l - cgu * u - cgv * v;
      out[o + 2] = l + cbu * u;
      out[o + 3] = 255;
    }
  }
  return out;
}
