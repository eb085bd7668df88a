"""The browser player's extension of the asset pack JSON (``talkingface.web``, versioned).

``data_preparation_web.py`` writes, inside the pack's own ``talkingface`` key (which the
original's readers ignore, so they read the pack as before)::

    "web": {
      "version": 1,
      "models": {"dinet_mini": <weights id of ref_data's checkpoint (= ref_checkpoint)>,
                 "audio": <first 16 hex digits of the sha256 of the blendshape audio model's checkpoint,
                           whose basis made bs_table>},   # the ONNX manifest records both (docs/ONNX.md)
      "bs_table": {"rows": 6, "columns": V, "data": [rows x V x 3 floats]},  # displacement per unit coefficient
      "faces": [[a, b, c], ...],        # 0-based, in the renderer's draw order (teeth, cavity, rest)
      "warp_faces": [[a, b, c], ...],   # the label-free mesh (lips as skin, no teeth/cavity), draw order
      "warp_labels": [V floats]         # labels of the label-free mesh
    }

Everything is derived from the mesh exactly as the Python reader sees it (re-read from the pack's
``face3D_obj`` lines), so the browser's WebGL2 render and :class:`RenderModelMini` draw the same
geometry. The player refuses a pack without this key, of another ``version``, or whose ``models``
differ from the served ONNX models' (see docs/WEB_PLAYER.md).
"""
from __future__ import annotations

from typing import Dict, Optional

import numpy as np

from talkingface.errors import UserInputError
from talkingface.web.models import file_id

WEB_PACK_VERSION = 1


def mesh_from_pack_data(data: dict):
    """The wrap mesh of a pack's JSON dict as :func:`load_asset_pack` reads it (ours: with MediaPipe ids)."""
    # Lazy: the renderer stack loads only when a pack's web extension is built.
    from mini_live.obj.wrap_utils import WrapMesh

    ours = data.get("talkingface") or {}
    if "mp_ids" not in ours:
        raise UserInputError("the pack has no MediaPipe ids (talkingface.mp_ids): not one of ours")
    mesh = WrapMesh.from_obj_lines(data["face3D_obj"], num_targets=int(ours.get("num_targets", 209)))
    mesh.mp_ids = np.asarray(ours["mp_ids"], np.int64)
    return mesh


def web_extension(data: dict, audio_model=None, basis=None) -> Dict:
    """The ``talkingface.web`` dict for a pack's JSON ``data`` (needs ``talkingface.ref_checkpoint``).

    ``audio_model``/``basis``: the blendshape audio model that will drive the mouth and its basis
    (default: the shipped one, ``load_audio_model(target="blendshape")``).
    """
    # Lazy: the renderer stack loads only when a pack's web extension is built.
    from mini_live.render import draw_order
    from talkingface.audio_loader import load_audio_model
    from talkingface.render_model_mini import mesh_bs_table, warp_only_mesh

    ours = data.get("talkingface") or {}
    if not ours.get("ref_checkpoint"):
        raise UserInputError("the pack names no ref_checkpoint: cannot tie it to a DINet_mini model")
    if audio_model is None:
        audio_model, basis = load_audio_model(target="blendshape", basis_required=False)
    mesh = mesh_from_pack_data(data)
    table = np.asarray(mesh_bs_table(mesh, basis), np.float32)
    warp = warp_only_mesh(mesh)
    faces = np.asarray(mesh.faces, np.int64)[draw_order(np.asarray(mesh.labels), mesh.faces)]
    warp_faces = np.asarray(warp.faces, np.int64)[draw_order(np.asarray(warp.labels), warp.faces)]
    return {
        "version": WEB_PACK_VERSION,
        "models": {"dinet_mini": str(ours["ref_checkpoint"]), "audio": file_id(audio_model.checkpoint)},
        "bs_table": {"rows": int(table.shape[0]), "columns": int(table.shape[1]),
                     "data": [float(f"{v:.7g}") for v in table.ravel()]},
        "faces": faces.tolist(),
        "warp_faces": warp_faces.tolist(),
        "warp_labels": [round(float(v), 4) for v in warp.labels],
    }


def check_web_extension(data: dict, models: Optional[Dict[str, str]] = None) -> Dict:
    """The pack's ``talkingface.web`` dict, checked against the served ``models`` ids; raises
    :class:`UserInputError` with what to do when the player cannot use the pack."""
    web = (data.get("talkingface") or {}).get("web")
    if not isinstance(web, dict):
        raise UserInputError("this pack has no web player data (made by another version or by the original "
                             "project): rebuild it with `python data_preparation_web.py AVATAR_DIR`")
    if web.get("version") != WEB_PACK_VERSION:
        raise UserInputError(f"this pack's web data is version {web.get('version')}; the player reads version "
                             f"{WEB_PACK_VERSION}: rebuild it with `python data_preparation_web.py AVATAR_DIR`")
    for key, want in (models or {}).items():
        have = (web.get("models") or {}).get(key)
        if want and have != want:
            raise UserInputError(f"this pack was made for {key} weights {have}, but the served model is {want}: "
                                 "rebuild it with `python data_preparation_web.py AVATAR_DIR`")
    return web
