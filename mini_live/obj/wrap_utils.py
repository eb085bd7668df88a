"""The wrap mesh: lower face, lips, cheeks and an outer anchor ring, plus procedural teeth.

The mini renderer draws this mesh (docs/REFERENCE.md §5.1). Vertex order is fixed:

1. ``num_targets`` face-mesh vertices (a subset of MediaPipe's 478, ids in ``mp_ids``) whose per-frame
   positions in the source video are known; the renderer's warp field is measured against them;
2. the outer anchor ring: one vertex pushed outward from each of the 21 lower face-oval points
   (``ring_source`` gives the vertex it is pushed from);
3. 18 upper-teeth then 18 lower-teeth vertices (two rows of 9 along an arch, see :func:`make_teeth`).

Faces: the face-mesh triangles inside the subset, a 40-triangle strip between the oval and the ring,
16 triangles per teeth band and a 16-triangle *cavity* band joining the upper teeth's lower row to the
lower teeth's upper row (its interpolated label lies strictly between 3 and 4, which the fragment
shader paints black).

Labels (docs/REFERENCE.md §5.1): -1 anchor (no warp), 0 skin, 2.00 upper lip, 2.01 lower lip, 3 upper teeth,
4 lower teeth. Coordinates are in the canonical mean-face space of
:func:`talkingface.run_utils.load_mean_face` (x right, y down, z toward the viewer negative).
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field, replace
from typing import Iterable, List, Optional

import numpy as np

from mini_live.obj.face_mesh import mesh_edges
from mini_live.obj.obj_io import PathLike, nearest_vertex, parse_obj_lines
from talkingface.errors import UserInputError
from talkingface.util.files import atomic_write
from talkingface.utils import MP_FACE_OVAL_LOWER, MP_LIPS_RINGS, MP_NOSE_EDGE

LABEL_ANCHOR = -1.0
LABEL_SKIN = 0.0
LABEL_UPPER_LIP = 2.0
LABEL_LOWER_LIP = 2.01
LABEL_UPPER_TEETH = 3.0
LABEL_LOWER_TEETH = 4.0

#: Positions along a 20-point lip ring (``MP_LIPS_RINGS``): 0..10 run over the upper lip corner to
#: corner, 11..19 back along the lower lip.
RING_UPPER = list(range(0, 11))
RING_LOWER = list(range(11, 20))
#: Teeth are built as 2 rows x TEETH_COLUMNS vertices.
TEETH_COLUMNS = 9


@dataclass
class WrapConfig:
    """How the wrap subset, its anchor ring and the teeth are shaped (canonical-face units)."""

    cheek_level: float = 0.30      # top of the subset on the cheeks: eye bottom + this x (nose base - eye bottom)
    ring_push: float = 0.32        # ring vertex = oval point + ring_push * (oval point - oval centroid), xy only
    teeth_width: float = 0.95      # teeth arch width / outer mouth-corner distance
    teeth_arch_depth: float = 0.45  # how far the arch ends lie behind its front, / mouth width
    teeth_behind_lips: float = 0.10  # arch front behind the inner-lip midline, / mouth width
    upper_teeth_top: float = 0.16    # above the upper inner lip, / mouth width
    upper_teeth_share: float = 0.25  # upper incisal edge: this share of the lip gap below the upper inner lip ...
    upper_teeth_hidden: float = 0.018  # ... minus this, / mouth width (teeth show once the gap exceeds 0.07 W)
    lower_teeth_share: float = 0.18  # lower teeth top: this share of the lip gap above the lower inner lip ...
    lower_teeth_hidden: float = 0.013  # ... minus this, / mouth width
    lower_teeth_bottom: float = 0.18  # below the lower inner lip, / mouth width
    num_targets: int = 209         # subset size (the original's, which its asset-pack layout assumes); 0 = as cut


@dataclass
class WrapMesh:
    """A labelled mouth mesh ready for :class:`mini_live.render.MouthRenderer`.

    vertices: (V, 3) float64 model space; labels: (V,) float64 (see module docstring);
    faces: (F, 3) int64 0-based; mp_ids: (V,) int64 MediaPipe id per vertex or -1;
    ring_source: (V,) int64 index of the vertex a ring vertex is pushed from, or -1;
    num_targets: vertices [0, num_targets) carry a landmark target in every frame.
    The blendshape-table column of vertex i is i.
    """

    vertices: np.ndarray
    labels: np.ndarray
    faces: np.ndarray
    mp_ids: np.ndarray
    ring_source: np.ndarray
    num_targets: int
    config: WrapConfig = field(default_factory=WrapConfig)

    def __post_init__(self) -> None:
        n = len(self.vertices)
        for name in ("labels", "mp_ids", "ring_source"):
            if len(getattr(self, name)) != n:
                raise ValueError(f"WrapMesh.{name} has {len(getattr(self, name))} entries for {n} vertices")
        if self.faces.size and (self.faces.min() < 0 or self.faces.max() >= n):
            raise ValueError("WrapMesh face index out of range")

    @property
    def target_ids(self) -> np.ndarray:
        """MediaPipe ids of the target vertices, (num_targets,): ``points = landmarks[target_ids, :2]``."""
        return self.mp_ids[: self.num_targets]

    def obj_lines(self, decimals: int = 3) -> List[str]:
        """The original's text form: ``v x y z label index`` lines then 1-based ``f a b c`` lines."""
        lines = [f"v {x:.{decimals}f} {y:.{decimals}f} {z:.{decimals}f} {lab:.2f} {i}"
                 for i, ((x, y, z), lab) in enumerate(zip(self.vertices, self.labels))]
        lines += [f"f {a + 1} {b + 1} {c + 1}" for a, b, c in self.faces]
        return lines

    @classmethod
    def from_obj_lines(cls, lines: Iterable[str], face_vertices: Optional[np.ndarray] = None,
                       num_targets: Optional[int] = None) -> "WrapMesh":
        """Read the ``v x y z label index`` / ``f`` form (ours, or the original's face_wrap_entity.obj).

        The index column must be 0..V-1 in order. ``face_vertices`` (478, 3), when given, is the face
        mesh the wrap vertices were taken from: vertices lying on it (distance < 1e-3) get its ids.
        ``num_targets`` defaults to the count of leading vertices with a face-mesh id; without
        ``face_vertices``, to the count of leading vertices labelled below 3 (for the original's file that
        includes its 21 ring vertices: pass ``num_targets=209`` there).
        """
        obj = parse_obj_lines(lines)
        if obj.v_extra.shape[1] < 2:
            raise UserInputError("wrap mesh v lines need 5 numbers: x y z label index")
        index = obj.v_extra[:, 1].round().astype(np.int64)
        if not np.array_equal(index, np.arange(len(index))):
            raise UserInputError("wrap mesh index column is not 0..V-1 in order")
        mp_ids = np.full(len(obj.v), -1, np.int64)
        if face_vertices is not None:
            idx, dist = nearest_vertex(obj.v, face_vertices, return_distance=True)
            mp_ids = np.where(dist < 1e-3, idx, -1)
        if num_targets is None:
            has = mp_ids >= 0 if face_vertices is not None else obj.v_extra[:, 0] < 2.5
            num_targets = int(np.argmin(has)) if not has.all() else len(has)
        return cls(vertices=obj.v.copy(), labels=obj.v_extra[:, 0].copy(), faces=obj.triangles.copy(),
                   mp_ids=mp_ids, ring_source=np.full(len(obj.v), -1, np.int64), num_targets=num_targets)

    def save(self, path: PathLike) -> None:
        """Store as ``.npz`` (written to a temporary name, then renamed)."""
        with atomic_write(path) as tmp:
            np.savez(tmp, vertices=self.vertices, labels=self.labels, faces=self.faces, mp_ids=self.mp_ids,
                     ring_source=self.ring_source, num_targets=self.num_targets,
                     config=np.array([getattr(self.config, f.name) for f in dataclasses.fields(self.config)]))

    @classmethod
    def load(cls, path: PathLike) -> "WrapMesh":
        with np.load(path, allow_pickle=False) as d:
            fields = dataclasses.fields(WrapConfig)
            cfg = WrapConfig(**{f.name: (int(round(v)) if f.type == "int" else float(v))
                                for f, v in zip(fields, d["config"])})
            return cls(vertices=d["vertices"].astype(np.float64), labels=d["labels"].astype(np.float64),
                       faces=d["faces"].astype(np.int64), mp_ids=d["mp_ids"].astype(np.int64),
                       ring_source=d["ring_source"].astype(np.int64), num_targets=int(d["num_targets"]),
                       config=cfg)


# ------------------------------------------------------------------------------------------- geometry
def _inside_polygon(points: np.ndarray, poly: np.ndarray) -> np.ndarray:
    """Even-odd test of points (N, 2) against a closed polygon (P, 2); boundary points may go either way."""
    x, y = points[:, 0][:, None], points[:, 1][:, None]
    x0, y0 = poly[:, 0][None], poly[:, 1][None]
    x1, y1 = np.roll(poly[:, 0], -1)[None], np.roll(poly[:, 1], -1)[None]
    crosses = (y0 > y) != (y1 > y)
    with np.errstate(divide="ignore", invalid="ignore"):
        x_at = x0 + (y - y0) * (x1 - x0) / (y1 - y0)
    return (crosses & (x < x_at)).sum(axis=1) % 2 == 1


def select_wrap_region(face: np.ndarray, tris: np.ndarray, cfg: WrapConfig = WrapConfig()) -> np.ndarray:
    """MediaPipe ids (sorted) of the wrap subset of a frontal face (478, 3) with triangles (F, 3).

    The subset is every mesh vertex inside the lower face oval (closed across the top between its two
    ends), at or below the cheek level (``cfg.cheek_level`` of the way from the eye bottoms 145/374 to
    the nose base 2), and not strictly inside the nose outline (MP_NOSE_EDGE closed across the top).
    The lower face oval and the lips are always included. With ``cfg.num_targets`` the cut is then moved
    to give exactly that many vertices: the candidates just above the cheek line (inside the oval, outside
    the nose) are added nearest-first, or the highest non-forced vertices dropped.
    """
    face = np.asarray(face, np.float64)
    used = np.unique(tris)
    xy = face[used, :2]
    oval = face[MP_FACE_OVAL_LOWER, :2]
    eye_y = face[[145, 374], 1].mean()
    cheek_y = eye_y + cfg.cheek_level * (face[2, 1] - eye_y)
    nose = face[MP_NOSE_EDGE, :2]
    allowed = _inside_polygon(xy, oval) & ~_inside_polygon(xy, nose)
    forced = np.isin(used, np.concatenate([MP_FACE_OVAL_LOWER] + MP_LIPS_RINGS))
    keep = allowed & (xy[:, 1] >= cheek_y)
    keep |= np.isin(used, MP_NOSE_EDGE) & (xy[:, 1] >= cheek_y)
    keep |= forced
    want = int(cfg.num_targets)
    if want > 0 and keep.sum() != want:
        if keep.sum() < want:
            cand = np.flatnonzero(allowed & ~keep)
            cand = cand[np.argsort(-xy[cand, 1], kind="stable")]
            if len(cand) < want - keep.sum():
                raise ValueError(f"cannot grow the wrap subset to {want} vertices")
            keep[cand[: want - keep.sum()]] = True
        else:
            cand = np.flatnonzero(keep & ~forced)
            cand = cand[np.argsort(xy[cand, 1], kind="stable")]
            keep[cand[: keep.sum() - want]] = False
    return np.sort(used[keep])


def _interp_weights(xp: np.ndarray, x: np.ndarray) -> np.ndarray:
    """(len(x), len(xp)) weights of linear interpolation at ``x`` over knots ``xp`` (any order; clamped at
    the ends): ``weights @ yp`` equals ``np.interp(x, sorted xp, yp in that order)``."""
    xp = np.asarray(xp, np.float64)
    order = np.argsort(xp, kind="stable")
    xs = xp[order]
    out = np.zeros((len(x), len(xp)))
    for i, xi in enumerate(np.asarray(x, np.float64)):
        j = int(np.clip(np.searchsorted(xs, xi), 1, len(xs) - 1))
        x0, x1 = xs[j - 1], xs[j]
        t = float(np.clip((xi - x0) / (x1 - x0), 0.0, 1.0)) if x1 > x0 else 0.0
        out[i, order[j - 1]] += 1.0 - t
        out[i, order[j]] += t
    return out


def inner_lip_ids() -> tuple:
    """MediaPipe ids of the inner upper lip (corner to corner) and inner lower lip (with the right corner)."""
    inner = np.asarray(MP_LIPS_RINGS[3])
    return inner[RING_UPPER], np.concatenate([inner[RING_LOWER], inner[:1]])


def teeth_row_weights(lip_x_up: np.ndarray, lip_x_low: np.ndarray, x: np.ndarray,
                      cfg: WrapConfig = WrapConfig()) -> np.ndarray:
    """How each teeth row follows the inner lips: (4, len(x), len(lip_x_up) + len(lip_x_low)).

    Rows: upper band top, upper band bottom (incisal edge), lower band top, lower band bottom. Row r at
    column x has y = weights[r] @ concat(y_up_points, y_low_points) (plus the constant offsets of
    :func:`make_teeth`), so the same weights move the teeth with the lips in the blendshape table: the
    upper edge sits ``upper_teeth_share`` of the gap below the upper lip, the lower top
    ``lower_teeth_share`` of it above the lower lip, and the teeth show only as the mouth opens.
    """
    w_up = np.concatenate([_interp_weights(lip_x_up, x), np.zeros((len(x), len(lip_x_low)))], 1)
    w_low = np.concatenate([np.zeros((len(x), len(lip_x_up))), _interp_weights(lip_x_low, x)], 1)
    a, b = cfg.upper_teeth_share, cfg.lower_teeth_share
    return np.stack([w_up, (1 - a) * w_up + a * w_low, (1 - b) * w_low + b * w_up, w_low])


def make_teeth(face: np.ndarray, cfg: WrapConfig = WrapConfig()):
    """Procedural upper and lower teeth bands fitted to the mouth of a face (478, 3).

    Each band is 2 rows x 9 columns along an arch: x spans ``cfg.teeth_width`` of the outer mouth-corner
    distance W (61-291) about the mouth centre, z bends back as ``teeth_arch_depth * W * t**2``
    (t in [-1, 1]) from a front ``teeth_behind_lips * W`` behind the inner-lip midline (13/14). The rows
    follow the inner lips column by column (:func:`teeth_row_weights`): with y_up(x), y_low(x) the inner
    upper/lower lip at that column and g = y_low - y_up the gap, the upper band spans
    y_up - upper_teeth_top W .. y_up + upper_teeth_share g - upper_teeth_hidden W and the lower band
    y_low - lower_teeth_share g + lower_teeth_hidden W .. y_low + lower_teeth_bottom W. A closed mouth
    hides both bands behind the lips; as it opens, short teeth appear at the lips with dark cavity between
    them, as in real frames (shares and offsets measured on the training videos' teeth labels).

    Returns ``(upper (18,3), lower (18,3), band_faces (16,3), cavity_faces (16,3))``: vertex k of a band
    is column k // 2, row k % 2 (row 0 = top); ``band_faces`` index one band (0..17); ``cavity_faces``
    index the concatenation [upper, lower] (0..35), joining the upper band's bottom row to the lower
    band's top row.
    """
    face = np.asarray(face, np.float64)
    left, right = face[61], face[291]
    width = float(np.linalg.norm((right - left)[:2]))
    if not width > 0:
        raise UserInputError("mouth corners coincide; cannot place the teeth")
    centre_x = (left[0] + right[0]) / 2
    z_front = min(face[13, 2], face[14, 2]) + cfg.teeth_behind_lips * width
    t = np.linspace(-1.0, 1.0, TEETH_COLUMNS)
    x = centre_x + 0.5 * cfg.teeth_width * width * t
    z = z_front + cfg.teeth_arch_depth * width * t ** 2
    up_ids, low_ids = inner_lip_ids()
    rows = teeth_row_weights(face[up_ids, 0], face[low_ids, 0], x, cfg) @ face[np.concatenate([up_ids, low_ids]), 1]
    offsets = width * np.array([-cfg.upper_teeth_top, -cfg.upper_teeth_hidden, cfg.lower_teeth_hidden,
                                cfg.lower_teeth_bottom])
    rows = rows + offsets[:, None]

    def band(top: np.ndarray, bottom: np.ndarray) -> np.ndarray:
        out = np.zeros((2 * TEETH_COLUMNS, 3))
        out[0::2] = np.stack([x, top, z], 1)
        out[1::2] = np.stack([x, bottom, z], 1)
        return out

    upper = band(rows[0], rows[1])
    lower = band(rows[2], rows[3])
    band_faces, cavity = [], []
    n = 2 * TEETH_COLUMNS
    for c in range(TEETH_COLUMNS - 1):
        a, b, c2, d = 2 * c, 2 * c + 1, 2 * c + 2, 2 * c + 3  # top, bottom of column c and c+1
        band_faces += [[a, b, d], [a, d, c2]]
        ub, ub2 = 2 * c + 1, 2 * c + 3          # upper band, bottom row
        lt, lt2 = n + 2 * c, n + 2 * c + 2      # lower band, top row
        cavity += [[ub, lt, lt2], [ub, lt2, ub2]]
    return upper, lower, np.asarray(band_faces, np.int64), np.asarray(cavity, np.int64)


def generate_wrap_obj(face: np.ndarray, tris: np.ndarray, cfg: WrapConfig = WrapConfig()) -> WrapMesh:
    """Build the wrap-mesh template from a canonical face (478, 3) and its triangles (F, 3).

    Subset (:func:`select_wrap_region`) + labels (lip rings -> upper/lower lip; subset vertices with a
    mesh neighbour outside the subset -> anchor; the rest skin) + the outer anchor ring + teeth.
    """
    face = np.asarray(face, np.float64)
    tris = np.asarray(tris, np.int64)
    ids = select_wrap_region(face, tris, cfg)
    in_sub = np.zeros(len(face), bool)
    in_sub[ids] = True
    labels = np.full(len(ids), LABEL_SKIN)
    edges = mesh_edges(tris)
    border = np.zeros(len(face), bool)
    cut = in_sub[edges[:, 0]] != in_sub[edges[:, 1]]
    border[edges[cut].ravel()] = True
    labels[border[ids]] = LABEL_ANCHOR
    pos = {int(m): i for i, m in enumerate(ids)}
    for ring in MP_LIPS_RINGS:
        for k in RING_UPPER:
            labels[pos[ring[k]]] = LABEL_UPPER_LIP
        for k in RING_LOWER:
            labels[pos[ring[k]]] = LABEL_LOWER_LIP
    sub_faces = tris[in_sub[tris].all(axis=1)]
    faces = [np.vectorize(pos.get)(sub_faces)]

    n = len(ids)
    oval_pos = np.array([pos[m] for m in MP_FACE_OVAL_LOWER])
    ring_ids = n + np.arange(len(oval_pos))
    strip = []
    for k in range(len(oval_pos) - 1):
        a, b, ra, rb = oval_pos[k], oval_pos[k + 1], ring_ids[k], ring_ids[k + 1]
        strip += [[a, ra, rb], [a, rb, b]]
    faces.append(np.asarray(strip, np.int64))

    upper, lower, band, cavity = make_teeth(face, cfg)
    t0 = n + len(oval_pos)
    faces += [band + t0, band + t0 + len(upper), cavity + t0]
    vertices = np.concatenate([face[ids], np.zeros((len(oval_pos), 3)), upper, lower])
    ring_source = np.full(len(vertices), -1, np.int64)
    ring_source[ring_ids] = oval_pos
    all_labels = np.concatenate([labels, np.full(len(oval_pos), LABEL_ANCHOR),
                                 np.full(len(upper), LABEL_UPPER_TEETH), np.full(len(lower), LABEL_LOWER_TEETH)])
    mp_ids = np.concatenate([ids, np.full(len(vertices) - n, -1)]).astype(np.int64)
    mesh = WrapMesh(vertices=vertices, labels=all_labels, faces=np.concatenate(faces).astype(np.int64),
                    mp_ids=mp_ids, ring_source=ring_source, num_targets=n, config=cfg)
    _place_ring(mesh)
    return mesh


def _place_ring(mesh: WrapMesh) -> None:
    ring = np.flatnonzero(mesh.ring_source >= 0)
    if not len(ring):
        return
    src = mesh.vertices[mesh.ring_source[ring]]
    centre = src[:, :2].mean(axis=0)
    mesh.vertices[ring, :2] = src[:, :2] + mesh.config.ring_push * (src[:, :2] - centre)
    mesh.vertices[ring, 2] = src[:, 2]


def newWrapModel(template: WrapMesh, personal_mean: np.ndarray) -> WrapMesh:  # noqa: N802 (original's name)
    """Fit the wrap template to one person: a new :class:`WrapMesh` from their mean face (478, 3).

    Target vertices take the personal mean's positions, the anchor ring is re-pushed from the new oval,
    and the teeth are regenerated for the new mouth (:func:`make_teeth`). Topology and labels are kept.
    Apply :func:`normalizeLips` to ``personal_mean`` first so the neutral mouth is closed.
    """
    personal_mean = np.asarray(personal_mean, np.float64)
    if personal_mean.ndim != 2 or personal_mean.shape[0] <= template.target_ids.max(initial=0) \
            or personal_mean.shape[1] != 3:
        raise UserInputError(f"personal mean face must be (478, 3), got {personal_mean.shape}")
    mesh = replace(template, vertices=template.vertices.copy())
    mesh.vertices[: mesh.num_targets] = personal_mean[mesh.target_ids]
    _place_ring(mesh)
    upper_idx = np.flatnonzero(mesh.labels == LABEL_UPPER_TEETH)
    lower_idx = np.flatnonzero(mesh.labels == LABEL_LOWER_TEETH)
    if len(upper_idx) == len(lower_idx) == 2 * TEETH_COLUMNS:
        upper, lower, _, _ = make_teeth(personal_mean, mesh.config)
        mesh.vertices[upper_idx] = upper
        mesh.vertices[lower_idx] = lower
    return mesh


def normalizeLips(personal: np.ndarray, mean: np.ndarray, upper_share: float = 0.5) -> np.ndarray:  # noqa: N802
    """Close (or open) a personal mean face's lips to a reference face's lip gap (docs/REFERENCE.md §4).

    personal, mean: (478, 3) in the same canonical space; ``mean`` is the reference whose inner-lip gaps
    are copied - use :func:`mini_live.obj.utils.load_neutral_face` (the blendshape basis's rest mouth),
    so that all-zero blendshape weights render the avatar's mouth at rest. For the 9 facing upper/lower pairs of the
    inner ring (ring positions k and 20-k, k = 1..9 - the original paired k with 19-k+1 off by one),
    diff = gap(mean) - gap(personal) with gap = y_lower - y_upper; the pair at the same ring positions
    on all four rings moves by -upper_share * diff (upper point) and +(1 - upper_share) * diff (lower),
    so the inner gap becomes the mean's. Returns a new array.
    """
    out = np.array(personal, np.float64, copy=True)
    mean = np.asarray(mean, np.float64)
    inner = MP_LIPS_RINGS[3]
    for k in range(1, 10):
        up, low = inner[k], inner[20 - k]
        diff = (mean[low, 1] - mean[up, 1]) - (out[low, 1] - out[up, 1])
        for ring in MP_LIPS_RINGS:
            out[ring[k], 1] -= upper_share * diff
            out[ring[20 - k], 1] += (1.0 - upper_share) * diff
    return out
