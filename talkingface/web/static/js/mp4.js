// A minimal MP4 (ISO BMFF) demuxer for the avatar video, and a WebCodecs decode of all its frames.
//
// Why: reading a frame back from a playing <video> goes through the GPU process and costs far more
// than the whole mouth pipeline on software GL; frames from a software VideoDecoder live in CPU
// memory, so the mouth rect of every frame can be read once, up front, for next to nothing.
// Only what our packs use is read: the first video track, H.264 (avc1/avcC), sample tables
// stsz/stco|co64/stsc/stts/ctts/stss.

function boxes(view, start, end) {
  const out = [];
  let o = start;
  while (o + 8 <= end) {
    let size = view.getUint32(o);
    const type = String.fromCharCode(view.getUint8(o + 4), view.getUint8(o + 5), view.getUint8(o + 6), view.getUint8(o + 7));
    let header = 8;
    if (size === 1) {
      size = Number(view.getBigUint64(o + 8));
      header = 16;
    } else if (size === 0) {
      size = end - o;
    }
    if (size < header || o + size > end) break;
    out.push({ type, start: o + header, end: o + size });
    o += size;
  }
  return out;
}

function child(view, box, type) {
  return boxes(view, box.start, box.end).find((b) => b.type === type);
}

function fullBoxEntries(view, box, entrySize, read) {
  const n = view.getUint32(box.start + 4);
  const out = new Array(n);
  for (let i = 0; i < n; i++) out[i] = read(box.start + 8 + i * entrySize);
  return out;
}

/** Parse the first video track: {codec, description, width, height, samples: [{offset, size, cts, duration, key}]} (times in s). */
export function parseMp4(buffer) {
  const view = new DataView(buffer);
  const moov = boxes(view, 0, buffer.byteLength).find((b) => b.type === 'moov');
  if (!moov) throw new Error('not an MP4 file (no moov box)');
  for (const trak of boxes(view, moov.start, moov.end).filter((b) => b.type === 'trak')) {
    const mdia = child(view, trak, 'mdia');
    const hdlr = mdia && child(view, mdia, 'hdlr');
    if (!hdlr || view.getUint32(hdlr.start + 8) !== 0x76696465) continue; // 'vide'
    const mdhd = child(view, mdia, 'mdhd');
    const timescale = view.getUint8(mdhd.start) === 1 ? view.getUint32(mdhd.start + 20) : view.getUint32(mdhd.start + 12);
    const stbl = child(view, child(view, mdia, 'minf'), 'stbl');
    const stsd = child(view, stbl, 'stsd');
    const entry = boxes(view, stsd.start + 8, stsd.end)[0];
    if (!entry || (entry.type !== 'avc1' && entry.type !== 'avc3')) throw new Error(`unsupported video codec ${entry && entry.type}`);
    const width = view.getUint16(entry.start + 24);
    const height = view.getUint16(entry.start + 26);
    const avcC = boxes(view, entry.start + 78, entry.end).find((b) => b.type === 'avcC');
    if (!avcC) throw new Error('H.264 track without avcC');
    const description = new Uint8Array(buffer.slice(avcC.start, avcC.end));
    const hex = (k) => description[k].toString(16).padStart(2, '0');
    const codec = `avc1.${hex(1)}${hex(2)}${hex(3)}`;

    const stsz = child(view, stbl, 'stsz');
    const fixed = view.getUint32(stsz.start + 4);
    const count = view.getUint32(stsz.start + 8);
    const sizes = new Array(count);
    for (let i = 0; i < count; i++) sizes[i] = fixed || view.getUint32(stsz.start + 12 + 4 * i);
    const stco = child(view, stbl, 'stco');
    const chunkOffsets = stco
      ? fullBoxEntries(view, stco, 4, (o) => view.getUint32(o))
      : fullBoxEntries(view, child(view, stbl, 'co64'), 8, (o) => Number(view.getBigUint64(o)));
    const stsc = fullBoxEntries(view, child(view, stbl, 'stsc'), 12, (o) => [view.getUint32(o), view.getUint32(o + 4)]);
    const stts = fullBoxEntries(view, child(view, stbl, 'stts'), 8, (o) => [view.getUint32(o), view.getUint32(o + 4)]);
    const cttsBox = child(view, stbl, 'ctts');
    const ctts = cttsBox ? fullBoxEntries(view, cttsBox, 8, (o) => [view.getUint32(o), view.getInt32(o + 4)]) : [];
    const stssBox = child(view, stbl, 'stss');
    const sync = stssBox ? new Set(fullBoxEntries(view, stssBox, 4, (o) => view.getUint32(o))) : null;

    const samples = [];
    let k = 0;
    for (let c = 0; c < chunkOffsets.length; c++) {
      let run = 0;
      for (const [first, per] of stsc) if (first - 1 <= c) run = per;
      let off = chunkOffsets[c];
      for (let j = 0; j < run && k < count; j++, k++) {
        samples.push({ offset: off, size: sizes[k], key: sync ? sync.has(k + 1) : true });
        off += sizes[k];
      }
    }
    let dts = 0;
    let s = 0;
    for (const [n, delta] of stts) {
      for (let j = 0; j < n && s < samples.length; j++, s++) {
        samples[s].dts = dts;
        samples[s].duration = delta / timescale;
        dts += delta;
      }
    }
    s = 0;
    for (const [n, off] of ctts) for (let j = 0; j < n && s < samples.length; j++, s++) samples[s].ctsOffset = off;
    for (const smp of samples) smp.cts = (smp.dts + (smp.ctsOffset || 0)) / timescale;
    return { codec, description, width, height, samples };
  }
  throw new Error('the MP4 file has no video track');
}

/**
 * Decode every frame of an MP4 (software WebCodecs decoder) in presentation order, calling
 * `onFrame(index, VideoFrame)` for each (in order; the frame is closed after its promise settles).
 * Returns the frame count.
 */
export async function decodeAllFrames(buffer, onFrame) {
  const track = parseMp4(buffer);
  const config = { codec: track.codec, description: track.description, codedWidth: track.width,
    codedHeight: track.height, hardwareAcceleration: 'prefer-software' };
  const support = await VideoDecoder.isConfigSupported(config);
  if (!support.supported) throw new Error(`this browser cannot decode ${track.codec}`);
  let failure = null;
  let count = 0;
  let chain = Promise.resolve();
  // frames come out in presentation order; each is handled and closed at once (decoders stall when
  // their output frames are kept)
  const decoder = new VideoDecoder({
    output: (f) => {
      const i = count++;
      chain = chain.then(() => onFrame(i, f)).finally(() => f.close());
    },
    error: (e) => { failure = e; },
  });
  decoder.configure(config);
  for (const smp of track.samples) {
    decoder.decode(new EncodedVideoChunk({ type: smp.key ? 'key' : 'delta', timestamp: Math.round(smp.cts * 1e6),
      duration: Math.round(smp.duration * 1e6), data: new Uint8Array(buffer, smp.offset, smp.size) }));
  }
  await decoder.flush();
  decoder.close();
  await chain;
  if (failure) throw failure;
  return count;
}
