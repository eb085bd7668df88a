// Avatar asset packs in the browser: combined_data.json.gz (gunzipped with DecompressionStream)
// + 01.mp4. The player needs the pack's `talkingface.web` extension (written by
// data_preparation_web.py): the blendshape table of the audio model that drives the mouth, the
// draw-ordered faces of the label and label-free meshes, and the ids of the weights the pack was
// made for. Packs without it, of another extension version, or made for other weights are refused.

export const WEB_PACK_VERSION = 1;

export class PackError extends Error {}

async function gunzipJson(response) {
  const stream = response.body.pipeThrough(new DecompressionStream('gzip'));
  const text = await new Response(stream).text();
  return JSON.parse(text);
}

function parseObj(lines) {
  const vertices = [];
  const labels = [];
  const faces = [];
  for (const line of lines) {
    const tok = line.trim().split(/\s+/);
    if (tok[0] === 'v') {
      vertices.push(+tok[1], +tok[2], +tok[3]);
      labels.push(+tok[4]);
    } else if (tok[0] === 'f') {
      faces.push([+tok[1] - 1, +tok[2] - 1, +tok[3] - 1]);
    }
  }
  return { vertices: Float32Array.from(vertices), labels: Float32Array.from(labels), faces };
}

/** Check a pack's web extension against the served models ({dinet_mini, audio} ids); throws PackError. */
export function checkWebExtension(data, models) {
  const ours = data.talkingface || {};
  const web = ours.web;
  if (!web) {
    throw new PackError('this pack has no web player data (it was made by another version or by the original ' +
      'project): rebuild it with `python data_preparation_web.py AVATAR_DIR`');
  }
  if (web.version !== WEB_PACK_VERSION) {
    throw new PackError(`this pack's web data is version ${web.version}; this player reads version ` +
      `${WEB_PACK_VERSION}: rebuild it with \`python data_preparation_web.py AVATAR_DIR\``);
  }
  for (const key of ['dinet_mini', 'audio']) {
    const want = models[key];
    const have = (web.models || {})[key];
    if (want && have !== want) {
      throw new PackError(`this pack was made for ${key} weights ${have}, but the server's model is ${want}: ` +
        'rebuild the pack with `python data_preparation_web.py AVATAR_DIR` (or serve the matching models)');
    }
  }
  return web;
}

/**
 * Load a pack from `baseUrl` (ending in '/'), checked against `models`. Returns
 * {uid, frameCount, videoUrl, rects: Int32Array(4N), poses: [Float32Array(16)], points: [Float32Array(2P)],
 *  mesh: {vertices, labels, faces, warpLabels, warpFaces}, bsTable: {rows, columns, data}, refData: Float32Array}.
 */
export async function loadPack(baseUrl, models) {
  const response = await fetch(baseUrl + 'combined_data.json.gz');
  if (!response.ok) {
    let msg = `${response.status}`;
    try { msg = (await response.json()).error || msg; } catch (e) { /* not JSON */ }
    throw new PackError(`cannot load the pack at ${baseUrl}: ${msg}`);
  }
  let data;
  try {
    data = await gunzipJson(response);
  } catch (e) {
    throw new PackError(`the pack's combined_data.json.gz is not readable: ${e.message}`);
  }
  const web = checkWebExtension(data, models);
  const obj = parseObj(data.face3D_obj);
  const size = data.size || 128;
  const scale = 128 / size;
  const n = data.json_data.length;
  const rects = new Int32Array(4 * n);
  const poses = [];
  const points = [];
  for (let i = 0; i < n; i++) {
    const f = data.json_data[i];
    rects.set(f.rect, 4 * i);
    const pose = Float32Array.from(f.points.slice(0, 16));
    const pts = Float32Array.from(f.points.slice(16));
    if (scale !== 1) {
      for (let c = 0; c < 4; c++) for (let r = 0; r < 3; r++) pose[4 * c + r] *= scale;
      for (let k = 0; k < pts.length; k++) pts[k] *= scale;
    }
    poses.push(pose);
    points.push(pts);
  }
  const mesh = {
    vertices: obj.vertices,
    labels: obj.labels,
    faces: web.faces,
    warpLabels: Float32Array.from(web.warp_labels),
    warpFaces: web.warp_faces,
  };
  if (mesh.warpLabels.length !== mesh.labels.length) {
    throw new PackError('the pack\'s web data does not match its mesh (vertex counts differ)');
  }
  const table = web.bs_table;
  return {
    uid: data.uid,
    frameCount: n,
    videoUrl: baseUrl + '01.mp4',
    rects,
    poses,
    points,
    mesh,
    bsTable: { rows: table.rows, columns: table.columns, data: Float32Array.from(table.data) },
    refData: Float32Array.from(data.ref_data),
    models: web.models,
  };
}
