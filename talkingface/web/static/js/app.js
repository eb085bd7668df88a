// The page: avatar + speech pickers, Play (file mode) / Stream (server mode), avatar building and
// offline mp4 jobs. URL parameters: ?pack=NAME&audio=ID&mode=file|stream&autoplay=1&threads=N.

import { Player } from './player.js';

const $ = (id) => document.getElementById(id);
const params = new URLSearchParams(location.search);

function status(text, isError = false) {
  const el = $('status');
  el.textContent = text;
  el.classList.toggle('error', isError);
}

function note(id, text, isError = false) {
  $(id).textContent = text;
  $(id).classList.toggle('error', isError);
}

async function api(url, options) {
  const res = await fetch(url, options);
  let body = null;
  try { body = await res.json(); } catch (e) { /* not JSON */ }
  if (!res.ok) throw new Error((body && body.error) || `${url}: HTTP ${res.status}`);
  return body;
}

async function pollJob(id, progressId, noteId) {
  const bar = $(progressId);
  bar.hidden = false;
  for (;;) {
    const job = await api(`/api/jobs/${id}`);
    bar.value = job.progress;
    note(noteId, job.state === 'error' ? `failed: ${job.error}` : `${job.state}: ${job.step} ${job.message ? '— ' + job.message : ''}`,
      job.state === 'error');
    if (job.state === 'done' || job.state === 'error') return job;
    await new Promise((r) => setTimeout(r, 1000));
  }
}

const player = new Player($('screen'), {
  threads: Number(params.get('threads') || 1),
  video: $('avatar-video'),
  onStatus: (s) => status(s),
});
window.__player = player;
if (params.get('display') === 'overlay') player.useOverlay($('stage'));

async function refreshPacks(select) {
  const { packs } = await api('/api/packs');
  const sel = $('pack-select');
  sel.innerHTML = '';
  for (const p of packs) {
    const opt = new Option(`${p.name}${p.usable ? '' : ' (not usable)'}`, p.name);
    opt.dataset.error = p.error || '';
    sel.add(opt);
  }
  if (select) sel.value = select;
  return packs;
}

async function refreshAudio() {
  const { samples } = await api('/api/samples');
  const sel = $('audio-select');
  sel.innerHTML = '';
  for (const s of samples) sel.add(new Option(`sample: ${s.name}`, s.id));
}

let uploadedId = null; // server id of the chosen local speech file

async function speechId() {
  const file = $('audio-file').files[0];
  if (!file) return $('audio-select').value;
  if (!uploadedId) {
    const form = new FormData();
    form.append('audio', file);
    uploadedId = (await api('/api/audio', { method: 'POST', body: form })).id;
  }
  return uploadedId;
}

async function speechBytes() {
  const file = $('audio-file').files[0];
  if (file) return file.arrayBuffer();
  const res = await fetch(`/audio/${$('audio-select').value}.wav`);
  if (!res.ok) throw new Error((await res.json()).error);
  return res.arrayBuffer();
}

async function loadSelectedPack() {
  const name = $('pack-select').value;
  if (!name) throw new Error('no avatar yet: build one below');
  note('pack-note', '');
  try {
    await player.setPack(name);
  } catch (e) {
    note('pack-note', e.message, true);
    throw e;
  }
  await player.start();
}

async function play() {
  if (!player.pack) await loadSelectedPack();
  if (player.stream) { player.stream.close(); player.stream = null; }
  const info = await player.playSpeech(await speechBytes());
  return info;
}

async function stream() {
  if (!player.pack) await loadSelectedPack();
  player.stopSpeech();
  if (!player.stream) await player.connectStream('/ws/drive');
  player.stream.say(await speechId());
}

function stop() {
  player.stopSpeech();
  if (player.stream) player.stream.clear();
}

async function build() {
  const file = $('video-file').files[0];
  if (!file) { note('build-note', 'choose a video first', true); return; }
  const form = new FormData();
  form.append('video', file);
  if ($('avatar-name').value) form.append('name', $('avatar-name').value);
  const job = await api('/api/avatars', { method: 'POST', body: form });
  const done = await pollJob(job.id, 'build-progress', 'build-note');
  if (done.state === 'done') {
    await refreshPacks(done.result.pack);
    note('build-note', `avatar ${done.result.pack} is ready: load it above`);
  }
}

async function synth() {
  const body = JSON.stringify({ pack: $('pack-select').value, audio: await speechId() });
  const job = await api('/api/synthesize', { method: 'POST', body, headers: { 'Content-Type': 'application/json' } });
  const done = await pollJob(job.id, 'synth-progress', 'synth-note');
  if (done.state === 'done') {
    const url = done.result.video;
    $('synth-note').innerHTML = `done: <a href="${url}" download>download the mp4</a> · <a href="/?pack=${encodeURIComponent($('pack-select').value)}">live player</a>`;
  }
}

function guard(fn) {
  return async () => {
    try { await fn(); } catch (e) { status(e.message, true); }
  };
}

function showStats() {
  const ms = player.stats.ms.slice(-50);
  if (ms.length) {
    const avg = (k) => (ms.reduce((a, m) => a + m[k], 0) / ms.length).toFixed(1);
    $('stats').textContent = `frames ${player.stats.frames} dropped ${player.stats.dropped} · ms/frame ${avg('total')} ` +
      `(crop ${avg('crop')} gl ${avg('gl')} net ${avg('network')} paste ${avg('paste')})`;
  }
}

/** Wait for the server's start-up jobs (model export, sample pack), showing their progress. */
async function waitForStartup() {
  for (;;) {
    const { jobs } = await api('/api/startup');
    const failed = jobs.find((j) => j.state === 'error');
    if (failed) throw new Error(`server start-up job failed: ${failed.error}`);
    const running = jobs.find((j) => j.state === 'queued' || j.state === 'running');
    if (!running) return;
    status(`the server is preparing: ${running.step || running.kind}…`);
    await new Promise((r) => setTimeout(r, 1500));
  }
}

async function main() {
  $('pack-load').onclick = guard(loadSelectedPack);
  $('play').onclick = guard(play);
  $('stream').onclick = guard(stream);
  $('clear').onclick = guard(stop);
  $('build').onclick = guard(build);
  $('synth').onclick = guard(synth);
  $('audio-file').onchange = () => { uploadedId = null; };
  setInterval(showStats, 1000);
  window.__app = { play, stream, stop, refreshPacks, loadSelectedPack, api, pollJob };
  try {
    await waitForStartup();
    await Promise.all([refreshPacks(params.get('pack')), refreshAudio()]);
    if (params.get('audio')) $('audio-select').value = params.get('audio');
    await player.init();
    status('ready: pick an avatar and press Play');
    if (params.get('autoplay')) {
      if (params.get('mode') === 'stream') await stream(); else await play();
    }
    window.__ready = true;
  } catch (e) {
    status(e.message, true);
    window.__ready = true;
    window.__error = e.message;
  }
}

main();
