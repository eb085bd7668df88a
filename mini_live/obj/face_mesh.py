"""Face-mesh topology: triangles recovered from MediaPipe's face-mesh tessellation.

MediaPipe publishes its face mesh as an edge list (``FACEMESH_TESSELATION``, 468 vertices). The
triangles are the 3-cycles of that edge graph, minus the few 3-cycles that are not faces (a cycle
whose three edges all already border two other candidate triangles). The triangles are then wound
consistently (neighbouring faces traverse a shared edge in opposite directions) and the global sign
is chosen so faces are counter-clockwise on screen (x right, y down) seen from the front. The
result is the ``face_mesh.npz`` asset written by ``mini_live/obj/make_assets.py``.
"""
from __future__ import annotations

import itertools
import warnings
from collections import defaultdict, deque
from typing import Iterable, Tuple

import numpy as np

NUM_MESH_VERTICES = 468


def tessellation_edges() -> set:
    """MediaPipe's face-mesh tessellation as a set of undirected edges (a, b) with a < b."""
    warnings.filterwarnings("ignore", message="SymbolDatabase.GetPrototype")
    # Lazy: mediapipe takes seconds to import; most users of this module never run it.
    import mediapipe as mp

    return {(min(a, b), max(a, b)) for a, b in mp.solutions.face_mesh_connections.FACEMESH_TESSELATION}


def triangles_from_edges(edges: Iterable[Tuple[int, int]]) -> np.ndarray:
    """The faces of a triangulated surface given only its edges: (F, 3) int64, unoriented, sorted."""
    adj = defaultdict(set)
    for a, b in edges:
        adj[a].add(b)
        adj[b].add(a)
    cycles = set()
    for a in adj:
        for b in adj[a]:
            if b > a:
                cycles.update(tuple(sorted((a, b, c))) for c in adj[a] & adj[b] if c > b)
    use = defaultdict(int)
    for t in cycles:
        for e in itertools.combinations(t, 2):
            use[e] += 1
    faces = [t for t in cycles if not all(use[e] > 2 for e in itertools.combinations(t, 2))]
    return np.asarray(sorted(faces), np.int64)


def orient_triangles(tris: np.ndarray, vertices: np.ndarray) -> np.ndarray:
    """Wind ``tris`` (F,3) consistently and counter-clockwise on screen for ``vertices`` (V,>=2), y down.

    Orientation is propagated across shared edges (breadth first over each connected piece); each piece
    is then flipped if most of its faces have negative signed screen area.
    """
    tris = np.asarray(tris, np.int64).copy()
    by_edge = defaultdict(list)
    for f, t in enumerate(tris):
        for k in range(3):
            by_edge[frozenset((t[k], t[(k + 1) % 3]))].append(f)
    seen = np.zeros(len(tris), bool)
    for start in range(len(tris)):
        if seen[start]:
            continue
        seen[start] = True
        piece, queue = [start], deque([start])
        while queue:
            f = queue.popleft()
            t = tris[f]
            for k in range(3):
                a, b = t[k], t[(k + 1) % 3]
                for g in by_edge[frozenset((a, b))]:
                    if seen[g]:
                        continue
                    u = list(tris[g])
                    # a consistent neighbour traverses the shared edge as b -> a
                    ia = u.index(a)
                    if u[(ia + 1) % 3] == b:
                        tris[g] = tris[g][::-1]
                    seen[g] = True
                    piece.append(g)
                    queue.append(g)
        piece = np.asarray(piece)
        if np.sum(signed_area(tris[piece], vertices) < 0) > len(piece) / 2:
            tris[piece] = tris[piece][:, ::-1]
    return tris


def signed_area(tris: np.ndarray, vertices: np.ndarray) -> np.ndarray:
    """Screen-space signed area of each triangle (positive = counter-clockwise on screen, y down)."""
    p = np.asarray(vertices, np.float64)[np.asarray(tris)][..., :2]
    d1, d2 = p[:, 1] - p[:, 0], p[:, 2] - p[:, 0]
    # with y pointing down, a counter-clockwise turn on screen has a negative mathematical cross product
    return -(d1[:, 0] * d2[:, 1] - d1[:, 1] * d2[:, 0]) / 2


def face_mesh_triangles(vertices: np.ndarray) -> np.ndarray:
    """MediaPipe face-mesh triangles (852, 3) int64, oriented for the face ``vertices`` (>=468, 3)."""
    return orient_triangles(triangles_from_edges(tessellation_edges()), vertices)


def mesh_edges(tris: np.ndarray) -> np.ndarray:
    """Unique undirected edges (E, 2) of triangles (F, 3), each row sorted."""
    tris = np.asarray(tris, np.int64)
    e = np.concatenate([tris[:, [0, 1]], tris[:, [1, 2]], tris[:, [2, 0]]])
    return np.unique(np.sort(e, axis=1), axis=0)
