// Measurement hooks for the browser tests and bench/bench_web.py (not used by the page itself).

/** base64 of a byte array (for returning pixels to the test driver as JSON). */
export function toBase64(bytes) {
  const u8 = new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  let s = '';
  for (let i = 0; i < u8.length; i += 0x8000) s += String.fromCharCode.apply(null, u8.subarray(i, i + 0x8000));
  return btoa(s);
}

/**
 * Tap the player's speech output with an onset detector: returns {onsets: [context times]}; every
 * source the player starts is also connected to it (player.tap).
 */
export async function installOnsetTap(player, threshold = 0.1) {
  const ctx = player.audioContext();
  await ctx.audioWorklet.addModule('/static/js/onset-worklet.js');
  const node = new AudioWorkletNode(ctx, 'onset-tap', { processorOptions: { threshold } });
  const sink = ctx.createGain();
  sink.gain.value = 0;
  node.connect(sink).connect(ctx.destination);
  const result = { onsets: [], rearm: () => node.port.postMessage('arm') };
  node.port.onmessage = (ev) => result.onsets.push(ev.data.time);
  player.tap = node;
  return result;
}

/** Summary of the player's per-frame timings: median ms per stage and the frame rate achieved. */
export function timingSummary(player, skip = 5) {
  const ms = player.stats.ms.slice(skip);
  const med = (k) => {
    const v = ms.map((m) => m[k]).sort((a, b) => a - b);
    return v.length ? v[Math.floor(v.length / 2)] : null;
  };
  const log = player.frameLog.slice(skip);
  const span = log.length > 1 ? (log[log.length - 1].display - log[0].display) / 1000 : 0;
  return {
    frames: player.stats.frames, dropped: player.stats.dropped, measured: ms.length,
    median_ms: { total: med('total'), crop: med('crop'), gl: med('gl'), network: med('network'), paste: med('paste') },
    fps_shown: span > 0 ? (log.length - 1) / span : null,
  };
}
