"""Mini-renderer assets: where they live, how to load them, and the blendshape table.

Committed assets (written by ``python -m mini_live.obj.make_assets``; never edited by hand):

- ``data/face_mesh.npz``: ``triangles`` (852, 3) MediaPipe face-mesh triangles (:mod:`.face_mesh`);
- ``data/wrap_template.npz``: the wrap-mesh template (:class:`~mini_live.obj.wrap_utils.WrapMesh`) built on
  the canonical mean face of :func:`talkingface.run_utils.load_mean_face`;
- ``data/face_wrap_entity.obj``: the same template in the original's ``v x y z label index`` text form;
- ``data/teeth_upper.obj``, ``data/teeth_lower.obj``: the procedural teeth (v, vt, f);
- ``data/bs_table.npz``: ``table`` (6, V, 3) float32, the blendshape texture built from a
  ``BlendshapeBasis`` (:func:`bs_table_from_basis`), its ``coef_std`` (6,) and ``neutral_face`` (478, 3):
  the canonical mean face with the basis's rest (closed-mouth) shape on its landmarks - the reference
  :func:`~mini_live.obj.wrap_utils.normalizeLips` closes an avatar's lips to, so that all-zero weights
  render the mouth at rest; ``basis_sha256`` identifies the basis file it was built from.
"""
from __future__ import annotations

from pathlib import Path
from typing import Optional

import cv2
import numpy as np

from mini_live.obj.wrap_utils import (LABEL_ANCHOR, LABEL_LOWER_TEETH, LABEL_UPPER_TEETH, TEETH_COLUMNS, WrapMesh,
                                      inner_lip_ids, newWrapModel, normalizeLips, teeth_row_weights)
from talkingface.config.paths import MESH_DIR
from talkingface.errors import UserInputError
from talkingface.run_utils import calc_face_mat, load_mean_face

DATA_DIR = MESH_DIR
FACE_MESH_PATH = DATA_DIR / "face_mesh.npz"
WRAP_TEMPLATE_PATH = DATA_DIR / "wrap_template.npz"
BS_TABLE_PATH = DATA_DIR / "bs_table.npz"


def _need(path: Path) -> Path:
    if not path.is_file():
        raise UserInputError(f"mini renderer asset missing: {path} (run python -m mini_live.obj.make_assets)")
    return path


def load_face_triangles(path: Optional[Path] = None) -> np.ndarray:
    """(852, 3) int64 face-mesh triangles."""
    with np.load(_need(Path(path or FACE_MESH_PATH))) as d:
        return d["triangles"].astype(np.int64)


def load_wrap_template(path: Optional[Path] = None) -> WrapMesh:
    """The committed wrap-mesh template (canonical mean-face space)."""
    return WrapMesh.load(_need(Path(path or WRAP_TEMPLATE_PATH)))


def load_bs_table(path: Optional[Path] = None) -> np.ndarray:
    """The committed blendshape table (6, V, 3) float32 for the committed template."""
    with np.load(_need(Path(path or BS_TABLE_PATH))) as d:
        return d["table"].astype(np.float32)


def load_bs_coef_std(path: Optional[Path] = None) -> np.ndarray:
    """(6,) typical magnitude (std over the fitting frames) of each blendshape weight."""
    with np.load(_need(Path(path or BS_TABLE_PATH))) as d:
        return d["coef_std"].astype(np.float64)


def load_neutral_face(path: Optional[Path] = None) -> np.ndarray:
    """The rest face (478, 3) stored with the blendshape table (see the module docstring)."""
    with np.load(_need(Path(path or BS_TABLE_PATH))) as d:
        return d["neutral_face"].astype(np.float64)


def neutral_face_from_basis(basis, mean_face: np.ndarray) -> np.ndarray:
    """``mean_face`` (478, 3) with the basis's rest shape written at its landmark ids."""
    out = np.array(mean_face, np.float64, copy=True)
    out[np.asarray(basis.landmark_ids, np.int64)] = basis.mean
    return out


def bs_table_from_basis(basis, mesh: WrapMesh) -> np.ndarray:
    """The blendshape texture of ``mesh`` from a ``talkingface.mouth_basis.BlendshapeBasis``.

    Returns (n_components, V, 3) float32: column i = displacement of vertex i per unit coefficient.
    Vertices whose MediaPipe id is in the basis take its components; anchors and ring vertices stay fixed;
    each teeth row moves with the inner lips exactly as :func:`~mini_live.obj.wrap_utils.make_teeth` places
    it (:func:`~mini_live.obj.wrap_utils.teeth_row_weights`), so a blendshape that opens the mouth shows
    the teeth the fitted geometry would: short bands at the lips, cavity between them.
    """
    comps = np.asarray(basis.components, np.float64)
    ids = np.asarray(basis.landmark_ids, np.int64)
    col = {int(m): k for k, m in enumerate(ids)}
    table = np.zeros((len(comps), len(mesh.vertices), 3), np.float64)
    for v, m in enumerate(mesh.mp_ids):
        if m >= 0 and int(m) in col and mesh.labels[v] != LABEL_ANCHOR:
            table[:, v] = comps[:, col[int(m)]]
    up_ids, low_ids = inner_lip_ids()
    lip_ids = np.concatenate([up_ids, low_ids])
    missing = [int(m) for m in lip_ids if int(m) not in col]
    if missing:
        raise UserInputError(f"blendshape basis lacks the inner-lip points {missing}")
    pos = {int(m): v for v, m in enumerate(mesh.mp_ids) if m >= 0}
    lip_x = mesh.vertices[[pos[int(m)] for m in lip_ids], 0]
    lip_disp = comps[:, [col[int(m)] for m in lip_ids]]                     # (C, K, 3)
    for label, band_rows in ((LABEL_UPPER_TEETH, (0, 1)), (LABEL_LOWER_TEETH, (2, 3))):
        idx = np.flatnonzero(mesh.labels == label)
        if len(idx) != 2 * TEETH_COLUMNS:
            continue
        weights = teeth_row_weights(lip_x[: len(up_ids)], lip_x[len(up_ids):], mesh.vertices[idx[0::2], 0],
                                    mesh.config)
        for row, r in enumerate(band_rows):
            table[:, idx[row::2]] = np.einsum("tk,ckd->ctd", weights[r], lip_disp)
    return table.astype(np.float32)


def read_original_bs_png(path: Path, rows: int = 6, columns: int = 209) -> np.ndarray:
    """The original's ``bs_texture_halfFace.png`` (256x16) as a table (rows, columns, 3) float32.

    Texel RGB v encodes d = 2 v / 255 - 1 model units per unit weight (docs/REFERENCE.md §5.1); only the first
    ``rows`` rows are blendshapes and only the first ``columns`` (its 209 wrap vertices) are filled -
    the rest of the image is 0 and belongs to no blendshape (the renderer pads missing columns with 0).
    """
    img = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if img is None:
        raise UserInputError(f"cannot read blendshape texture {path}")
    rgb = img[:rows, :columns, ::-1].astype(np.float32)
    return 2.0 * rgb / 255.0 - 1.0


def fit_avatar(std_points: np.ndarray, template: Optional[WrapMesh] = None, neutral_face: Optional[np.ndarray] = None,
               mean_face: Optional[np.ndarray] = None):
    """Per-avatar set-up of the renderer from the standard-crop landmarks of its video.

    std_points: (N, 478, 3) landmarks in the standard crop (``image_utils.standard_points``). Solves the
    per-frame poses against the canonical mean face (``calc_face_mat``), closes the personal mean's lips
    to the rest shape (``normalizeLips``) and fits the wrap template to it (``newWrapModel``).
    Returns ``(mesh, mats (N, 4, 4) canonical -> standard crop)``.
    """
    mean_face = load_mean_face() if mean_face is None else mean_face
    template = load_wrap_template() if template is None else template
    neutral_face = load_neutral_face() if neutral_face is None else neutral_face
    mats, _, personal = calc_face_mat(np.asarray(std_points, np.float64), mean_face)
    return newWrapModel(template, normalizeLips(personal, neutral_face)), mats
