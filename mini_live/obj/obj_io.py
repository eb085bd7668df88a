"""Wavefront OBJ reading/writing, re-indexing into combined vertex/uv indices, nearest-vertex maps.

Only the parts of OBJ the meshes here use are supported: ``v`` lines (3 coordinates plus any number
of extra numbers, e.g. the wrap meshes' ``label index`` columns), ``vt``, ``vn`` and polygonal ``f``
lines whose corners are ``v``, ``v/vt``, ``v//vn`` or ``v/vt/vn`` (1-based; negative indices count
from the end). Polygons with more than three corners are fan-triangulated. Other statements
(``mtllib``, ``usemtl``, ``g``, ``s``, comments) are ignored on reading.

The original toolkit's ``modified_obj.py`` re-indexes a Maya export, whose faces use separate
position and uv indices, into a mesh where each (position, uv) pair is one vertex, so that a single
index buffer can drive OpenGL. :func:`reindex_obj` does that; the new vertex order is the order in
which the pairs are first met while walking the faces.
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, List, Optional, Union

import numpy as np

from talkingface.errors import UserInputError
from talkingface.util.files import write_text

PathLike = Union[str, os.PathLike]


@dataclass
class ObjMesh:
    """A triangle mesh as stored in an OBJ file.

    v: (V, 3) float64 positions; v_extra: (V, E) float64 extra numbers of the ``v`` lines (E may be 0);
    vt: (T, 2) float64 uvs; vn: (N, 3) float64 normals;
    faces: (F, 3, 3) int64 0-based [corner, (v, vt, vn)] indices, -1 where an index is absent.
    """

    v: np.ndarray
    faces: np.ndarray
    vt: np.ndarray = field(default_factory=lambda: np.zeros((0, 2)))
    vn: np.ndarray = field(default_factory=lambda: np.zeros((0, 3)))
    v_extra: Optional[np.ndarray] = None

    def __post_init__(self) -> None:
        if self.v_extra is None:
            self.v_extra = np.zeros((len(self.v), 0))

    @property
    def triangles(self) -> np.ndarray:
        """(F, 3) int64 0-based position indices of the faces."""
        return self.faces[:, :, 0]


def _corner(token: str, counts: tuple) -> List[int]:
    parts = token.split("/")
    out = []
    for k in range(3):
        if k < len(parts) and parts[k]:
            i = int(parts[k])
            out.append(i - 1 if i > 0 else counts[k] + i)
        else:
            out.append(-1)
    return out


def parse_obj_lines(lines: Iterable[str]) -> ObjMesh:
    """Parse OBJ text lines (the strings may or may not end with newlines) into an :class:`ObjMesh`."""
    v: List[List[float]] = []
    vt: List[List[float]] = []
    vn: List[List[float]] = []
    faces: List[List[List[int]]] = []
    n_extra: Optional[int] = None
    for lineno, raw in enumerate(lines, 1):
        tok = raw.split("#", 1)[0].split()
        if not tok:
            continue
        try:
            if tok[0] == "v":
                nums = [float(t) for t in tok[1:]]
                if len(nums) < 3:
                    raise ValueError("a v line needs 3 coordinates")
                if n_extra is None:
                    n_extra = len(nums) - 3
                elif len(nums) - 3 != n_extra:
                    raise ValueError("v lines have different numbers of columns")
                v.append(nums)
            elif tok[0] == "vt":
                vt.append([float(t) for t in tok[1:3]])
            elif tok[0] == "vn":
                vn.append([float(t) for t in tok[1:4]])
            elif tok[0] == "f":
                counts = (len(v), len(vt), len(vn))
                corners = [_corner(t, counts) for t in tok[1:]]
                if len(corners) < 3:
                    raise ValueError("a face needs at least 3 corners")
                for k in range(1, len(corners) - 1):
                    faces.append([corners[0], corners[k], corners[k + 1]])
        except ValueError as exc:
            raise UserInputError(f"bad OBJ line {lineno}: {raw.strip()!r} ({exc})") from exc
    arr_v = np.asarray(v, np.float64).reshape(-1, 3 + (n_extra or 0))
    mesh = ObjMesh(v=arr_v[:, :3], v_extra=arr_v[:, 3:], vt=np.asarray(vt, np.float64).reshape(-1, 2),
                   vn=np.asarray(vn, np.float64).reshape(-1, 3),
                   faces=np.asarray(faces, np.int64).reshape(-1, 3, 3))
    for k, (name, n) in enumerate((("v", len(mesh.v)), ("vt", len(mesh.vt)), ("vn", len(mesh.vn)))):
        idx = mesh.faces[:, :, k]
        if idx.size and (idx.max() >= n or idx[idx != -1].min(initial=0) < 0):
            raise UserInputError(f"OBJ face refers to a {name} index outside 1..{n}")
    return mesh


def read_obj(path: PathLike) -> ObjMesh:
    """Read an OBJ file (see the module docstring for what is supported)."""
    path = Path(path)
    if not path.is_file():
        raise UserInputError(f"OBJ file not found: {path}")
    with open(path, encoding="utf-8") as fh:
        return parse_obj_lines(fh)


def _fmt(x: float, decimals: int) -> str:
    return f"{x:.{decimals}f}"


def obj_lines(mesh: ObjMesh, decimals: int = 6) -> List[str]:
    """The OBJ text of ``mesh`` as lines without newlines (v with extra columns, vt, vn, f)."""
    lines = []
    for p, e in zip(mesh.v, mesh.v_extra):
        lines.append("v " + " ".join(_fmt(x, decimals) for x in list(p) + list(e)))
    lines += ["vt " + " ".join(_fmt(x, decimals) for x in t) for t in mesh.vt]
    lines += ["vn " + " ".join(_fmt(x, decimals) for x in n) for n in mesh.vn]
    for face in mesh.faces:
        corners = []
        for vi, ti, ni in face:
            s = str(vi + 1)
            if ti >= 0 or ni >= 0:
                s += "/" + (str(ti + 1) if ti >= 0 else "")
            if ni >= 0:
                s += "/" + str(ni + 1)
            corners.append(s)
        lines.append("f " + " ".join(corners))
    return lines


def write_text_atomic(path: PathLike, text: str) -> None:
    """Write ``text`` to ``path`` through a temporary file in the same folder, then rename."""
    write_text(path, text)


def write_obj(path: PathLike, mesh: ObjMesh, header: str = "", decimals: int = 6) -> None:
    """Write ``mesh`` as an OBJ file (atomically); ``header`` lines are written as ``#`` comments."""
    head = [f"# {h}" for h in header.splitlines()] if header else []
    write_text_atomic(path, "\n".join(head + obj_lines(mesh, decimals)) + "\n")


def reindex_obj(mesh: ObjMesh) -> ObjMesh:
    """Re-index a mesh so every distinct (position, uv) corner pair becomes one vertex.

    Returns a mesh whose faces use the same index for v and vt (vn dropped), vertices numbered in
    order of first use by the faces (the original's ``modified_obj``). A mesh without uvs is re-indexed
    on positions only (unused positions are dropped).
    """
    pairs = mesh.faces[:, :, :2].reshape(-1, 2)
    keys, first, inverse = np.unique(pairs, axis=0, return_index=True, return_inverse=True)
    order = np.argsort(first, kind="stable")
    rank = np.empty_like(order)
    rank[order] = np.arange(len(order))
    new_index = rank[inverse.reshape(-1)].reshape(-1, 3)
    keys = keys[order]
    has_uv = (keys[:, 1] >= 0).all() and len(mesh.vt) > 0
    faces = np.full((len(new_index), 3, 3), -1, np.int64)
    faces[:, :, 0] = new_index
    if has_uv:
        faces[:, :, 1] = new_index
    return ObjMesh(v=mesh.v[keys[:, 0]], v_extra=mesh.v_extra[keys[:, 0]],
                   vt=mesh.vt[keys[:, 1]] if has_uv else np.zeros((0, 2)), faces=faces)


def nearest_vertex(query: np.ndarray, reference: np.ndarray, return_distance: bool = False):
    """For each point of ``query`` (Q, D) the index of the nearest point of ``reference`` (R, D).

    Exact, vectorised (a KD-tree). Returns (Q,) int64 indices, and the (Q,) Euclidean distances when
    ``return_distance``. This is how a mesh made of a subset of another mesh's vertices is mapped
    back onto the full mesh (the original's ``wrap_index.py``).
    """
    # Lazy: scipy.spatial takes seconds to import and only mesh building needs nearest vertices.
    from scipy.spatial import cKDTree

    query = np.asarray(query, np.float64)
    reference = np.asarray(reference, np.float64)
    if query.ndim != 2 or reference.ndim != 2 or query.shape[1] != reference.shape[1] or not len(reference):
        raise ValueError(f"nearest_vertex: shapes {query.shape} and {reference.shape} do not match")
    dist, idx = cKDTree(reference).query(query, k=1)
    idx = np.asarray(idx, np.int64)
    return (idx, np.asarray(dist)) if return_distance else idx
