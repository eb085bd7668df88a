// WebGL2 port of the mini mouth renderer (mini_live/render.py with mini_live/shader/prompt3.*).
//
// One WebGL2 context on an OffscreenCanvas draws two meshes of an avatar into framebuffers:
//   - the label mesh at 256 x 256 (read back and decimated to 128, as the Python pipeline does),
//   - the label-free ("warp only") mesh at 128 x 128 (the interior blend's warp field).
// Output: 128 x 128 x 4 uint8 RGBA, row 0 = top: the warp field (R, G = (d + 1) / 2 in NDC,
// B = 128 outside the mouth), the mouth labels (upper lip 255,0,0; lower lip 127,0,0; teeth
// 0,255,0 / 0,0,255; cavity black) and background (128,128,128, alpha 0).

const MAX_BLENDSHAPES = 12;
const DEPTH_RANGE = 1000.0;
const TEETH_DEPTH = 0.5;

const VERTEX_SHADER = `#version 300 es
precision highp float;
precision highp int;
precision highp sampler2D;
layout(location = 0) in vec3 a_position;
layout(location = 1) in vec2 a_label_index;
layout(location = 2) in vec3 a_target;
uniform mat4 gProjection;
uniform mat4 gWorld0;
uniform float bsVec[12];
uniform int bsCount;
uniform sampler2D texture_bs;
uniform float teethDepth;
out float v_label;
out vec2 v_bias;
void main() {
  float label = a_label_index.x;
  int column = int(a_label_index.y + 0.5);
  vec3 pos = a_position;
  for (int i = 0; i < bsCount; ++i) {
    pos += bsVec[i] * texelFetch(texture_bs, ivec2(column, i), 0).rgb;
  }
  vec4 world = gWorld0 * vec4(pos, 1.0);
  vec4 clip = gProjection * vec4(world.xyz, 1.0);
  if (label > 2.5) {
    clip.z = teethDepth;
  }
  gl_Position = clip;
  v_label = label;
  v_bias = (label > -0.5 && a_target.z > 0.5) ? clip.xy - a_target.xy : vec2(0.0);
}`;

const FRAGMENT_SHADER = `#version 300 es
precision highp float;
in float v_label;
in vec2 v_bias;
out vec4 fragColor;
const float EPS = 2e-4;
void main() {
  float L = v_label;
  if (abs(L - 2.0) < EPS) {
    fragColor = vec4(1.0, 0.0, 0.0, 1.0);
  } else if (L > 2.0 && L < 2.1) {
    fragColor = vec4(127.0 / 255.0, 0.0, 0.0, 1.0);
  } else if (abs(L - 3.0) < EPS) {
    fragColor = vec4(0.0, 1.0, 0.0, 1.0);
  } else if (abs(L - 4.0) < EPS) {
    fragColor = vec4(0.0, 0.0, 1.0, 1.0);
  } else if (L > 3.0 && L < 4.0) {
    fragColor = vec4(0.0, 0.0, 0.0, 1.0);
  } else {
    fragColor = vec4((v_bias + 1.0) * 0.5, 0.5, 1.0);
  }
}`;

// Output pixels (x right, y down, z) -> NDC, column-major; no y flip (readPixels starts at NDC y = -1).
function orthoPixels(size) {
  const m = new Float32Array(16);
  m[0] = 2.0 / size;
  m[5] = 2.0 / size;
  m[10] = 1.0 / DEPTH_RANGE;
  m[12] = -1.0;
  m[13] = -1.0;
  m[15] = 1.0;
  return m;
}

function compile(gl, kind, src) {
  const sh = gl.createShader(kind);
  gl.shaderSource(sh, src);
  gl.compileShader(sh);
  if (!gl.getShaderParameter(sh, gl.COMPILE_STATUS)) {
    throw new Error(`shader compilation failed: ${gl.getShaderInfoLog(sh)}`);
  }
  return sh;
}

class Target {
  // A framebuffer of size x size (RGBA8 + depth) with its read-back buffer.
  constructor(gl, size) {
    this.size = size;
    this.fbo = gl.createFramebuffer();
    gl.bindFramebuffer(gl.FRAMEBUFFER, this.fbo);
    const color = gl.createRenderbuffer();
    gl.bindRenderbuffer(gl.RENDERBUFFER, color);
    gl.renderbufferStorage(gl.RENDERBUFFER, gl.RGBA8, size, size);
    gl.framebufferRenderbuffer(gl.FRAMEBUFFER, gl.COLOR_ATTACHMENT0, gl.RENDERBUFFER, color);
    const depth = gl.createRenderbuffer();
    gl.bindRenderbuffer(gl.RENDERBUFFER, depth);
    gl.renderbufferStorage(gl.RENDERBUFFER, gl.DEPTH_COMPONENT24, size, size);
    gl.framebufferRenderbuffer(gl.FRAMEBUFFER, gl.DEPTH_ATTACHMENT, gl.RENDERBUFFER, depth);
    if (gl.checkFramebufferStatus(gl.FRAMEBUFFER) !== gl.FRAMEBUFFER_COMPLETE) {
      throw new Error('WebGL2 framebuffer incomplete');
    }
    this.pixels = new Uint8Array(size * size * 4);
    this.projection = orthoPixels(size);
  }
}

class MeshBuffers {
  // Vertex attributes (position, label/index, target) and draw-ordered triangle indices.
  constructor(gl, vertices, labels, faces) {
    const n = labels.length;
    const attrib = new Float32Array(n * 5);
    for (let i = 0; i < n; i++) {
      attrib.set([vertices[3 * i], vertices[3 * i + 1], vertices[3 * i + 2], labels[i], i], 5 * i);
    }
    this.n = n;
    this.targets = new Float32Array(n * 3);
    this.vao = gl.createVertexArray();
    gl.bindVertexArray(this.vao);
    const vbo = gl.createBuffer();
    gl.bindBuffer(gl.ARRAY_BUFFER, vbo);
    gl.bufferData(gl.ARRAY_BUFFER, attrib, gl.STATIC_DRAW);
    gl.enableVertexAttribArray(0);
    gl.vertexAttribPointer(0, 3, gl.FLOAT, false, 20, 0);
    gl.enableVertexAttribArray(1);
    gl.vertexAttribPointer(1, 2, gl.FLOAT, false, 20, 12);
    this.tbo = gl.createBuffer();
    gl.bindBuffer(gl.ARRAY_BUFFER, this.tbo);
    gl.bufferData(gl.ARRAY_BUFFER, this.targets, gl.DYNAMIC_DRAW);
    gl.enableVertexAttribArray(2);
    gl.vertexAttribPointer(2, 3, gl.FLOAT, false, 12, 0);
    const ebo = gl.createBuffer();
    gl.bindBuffer(gl.ELEMENT_ARRAY_BUFFER, ebo);
    const indices = Uint32Array.from(faces.flat());
    gl.bufferData(gl.ELEMENT_ARRAY_BUFFER, indices, gl.STATIC_DRAW);
    gl.bindVertexArray(null);
    this.count = indices.length;
  }
}

/**
 * The avatar's mouth renderer. `mesh`: {vertices: Float32Array(3V), labels: Float32Array(V),
 * faces: [[a,b,c]...] in draw order, warpLabels: Float32Array(V), warpFaces: [[a,b,c]...]};
 * `bsTable`: {rows, columns, data: Float32Array(rows*columns*3)} displacement per unit weight.
 */
export class MouthRendererGL {
  constructor(mesh, bsTable) {
    const canvas = new OffscreenCanvas(1, 1);
    const gl = canvas.getContext('webgl2', { antialias: false, depth: false, alpha: true, preserveDrawingBuffer: false });
    if (!gl) throw new Error('WebGL2 is not available in this browser');
    this.gl = gl;
    this.info = gl.getParameter(gl.VERSION);
    const prog = gl.createProgram();
    gl.attachShader(prog, compile(gl, gl.VERTEX_SHADER, VERTEX_SHADER));
    gl.attachShader(prog, compile(gl, gl.FRAGMENT_SHADER, FRAGMENT_SHADER));
    gl.linkProgram(prog);
    if (!gl.getProgramParameter(prog, gl.LINK_STATUS)) {
      throw new Error(`shader link failed: ${gl.getProgramInfoLog(prog)}`);
    }
    this.prog = prog;
    gl.useProgram(prog);
    this.uni = {};
    for (const name of ['gProjection', 'gWorld0', 'bsVec', 'bsCount', 'texture_bs', 'teethDepth']) {
      this.uni[name] = gl.getUniformLocation(prog, name);
    }
    gl.uniform1i(this.uni.texture_bs, 0);
    gl.uniform1f(this.uni.teethDepth, TEETH_DEPTH);
    gl.enable(gl.DEPTH_TEST);
    gl.depthFunc(gl.LESS);
    gl.disable(gl.CULL_FACE);
    gl.disable(gl.BLEND);
    gl.clearColor(0.5, 0.5, 0.5, 0.0);
    gl.clearDepth(1.0);
    this.labelMesh = new MeshBuffers(gl, mesh.vertices, mesh.labels, mesh.faces);
    this.warpMesh = new MeshBuffers(gl, mesh.vertices, mesh.warpLabels, mesh.warpFaces);
    this.big = new Target(gl, 256);
    this.small = new Target(gl, 128);
    this.weights = new Float32Array(MAX_BLENDSHAPES);
    this.tex = gl.createTexture();
    gl.activeTexture(gl.TEXTURE0);
    gl.bindTexture(gl.TEXTURE_2D, this.tex);
    gl.pixelStorei(gl.UNPACK_ALIGNMENT, 1);
    // columns beyond the table's get no displacement (as the Python renderer pads them)
    const columns = Math.max(bsTable.columns, mesh.labels.length);
    const data = new Float32Array(bsTable.rows * columns * 3);
    for (let r = 0; r < bsTable.rows; r++) {
      data.set(bsTable.data.subarray(r * bsTable.columns * 3, (r + 1) * bsTable.columns * 3), r * columns * 3);
    }
    gl.texImage2D(gl.TEXTURE_2D, 0, gl.RGB32F, columns, bsTable.rows, 0, gl.RGB, gl.FLOAT, data);
    gl.texParameteri(gl.TEXTURE_2D, gl.TEXTURE_MIN_FILTER, gl.NEAREST);
    gl.texParameteri(gl.TEXTURE_2D, gl.TEXTURE_MAG_FILTER, gl.NEAREST);
    gl.texParameteri(gl.TEXTURE_2D, gl.TEXTURE_WRAP_S, gl.CLAMP_TO_EDGE);
    gl.texParameteri(gl.TEXTURE_2D, gl.TEXTURE_WRAP_T, gl.CLAMP_TO_EDGE);
    gl.uniform1i(this.uni.bsCount, Math.min(bsTable.rows, MAX_BLENDSHAPES));
    this.out = { label: new Uint8Array(128 * 128 * 4), warp: null };
  }

  _draw(target, buffers, pose128, points128, weights) {
    const gl = this.gl;
    const s = target.size / 128;
    // pose128: 16 floats, column-major, model space -> 128-crop pixels; scaled to the target size
    const pose = Float32Array.from(pose128);
    for (let c = 0; c < 4; c++) for (let r = 0; r < 3; r++) pose[4 * c + r] *= s;
    const tg = buffers.targets;
    tg.fill(0);
    const p = Math.min(points128.length / 2, buffers.n);
    for (let i = 0; i < p; i++) {
      tg[3 * i] = points128[2 * i] * s * (2.0 / target.size) - 1.0;
      tg[3 * i + 1] = points128[2 * i + 1] * s * (2.0 / target.size) - 1.0;
      tg[3 * i + 2] = 1.0;
    }
    gl.bindFramebuffer(gl.FRAMEBUFFER, target.fbo);
    gl.viewport(0, 0, target.size, target.size);
    gl.clear(gl.COLOR_BUFFER_BIT | gl.DEPTH_BUFFER_BIT);
    gl.uniformMatrix4fv(this.uni.gProjection, false, target.projection);
    gl.uniformMatrix4fv(this.uni.gWorld0, false, pose);
    gl.uniform1fv(this.uni.bsVec, weights);
    gl.bindVertexArray(buffers.vao);
    gl.bindBuffer(gl.ARRAY_BUFFER, buffers.tbo);
    gl.bufferSubData(gl.ARRAY_BUFFER, 0, tg);
    gl.drawElements(gl.TRIANGLES, buffers.count, gl.UNSIGNED_INT, 0);
    gl.bindVertexArray(null);
    gl.readPixels(0, 0, target.size, target.size, gl.RGBA, gl.UNSIGNED_BYTE, target.pixels);
    return target.pixels;
  }

  /**
   * Render one frame. pose128: the pack's 16 column-major floats (model -> 128-crop pixels);
   * points128: Float32Array(2P) landmark targets in 128-crop pixels; bs: up to 12 weights.
   * Returns {label, warp}: 128x128x4 uint8 RGBA each (views reused by the next call).
   */
  render(pose128, points128, bs) {
    this.weights.fill(0);
    for (let i = 0; i < Math.min(bs.length, MAX_BLENDSHAPES); i++) this.weights[i] = bs[i];
    const big = this._draw(this.big, this.labelMesh, pose128, points128, this.weights);
    const label = this.out.label;
    for (let y = 0; y < 128; y++) {
      for (let x = 0; x < 128; x++) {
        const src = 4 * (2 * y * 256 + 2 * x);
        const dst = 4 * (y * 128 + x);
        label[dst] = big[src];
        label[dst + 1] = big[src + 1];
        label[dst + 2] = big[src + 2];
        label[dst + 3] = big[src + 3];
      }
    }
    const warp = this._draw(this.small, this.warpMesh, pose128, points128, this.weights);
    return { label, warp };
  }
}
