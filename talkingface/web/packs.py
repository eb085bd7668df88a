"""The avatar packs a web server offers, found by name only (no path from a client reaches the disk).

A pack named NAME is ``packs_dir/NAME/assets`` (an avatar folder made by data_preparation_mini.py +
data_preparation_web.py) or ``packs_dir/NAME`` holding the two pack files; ``sample`` is the built-in
sample avatar when the server has one. Only the two pack files can be fetched.
"""
from __future__ import annotations

import gzip
import json
import logging
import re
from pathlib import Path
from typing import Dict, List, Optional

from talkingface.errors import UserInputError
from talkingface.web.pack_web import check_web_extension

log = logging.getLogger(__name__)

PACK_FILES = ("01.mp4", "combined_data.json.gz")
NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$")
SAMPLE = "sample"


def pack_folder(avatar_or_pack: Path) -> Optional[Path]:
    """The folder holding the pack files of an avatar folder or a pack folder, or None."""
    for cand in (avatar_or_pack / "assets", avatar_or_pack):
        if (cand / PACK_FILES[1]).is_file() and (cand / PACK_FILES[0]).is_file():
            return cand
    return None


class PackStore:
    def __init__(self, packs_dir: Path, sample_avatar: Optional[Path] = None):
        self.packs_dir = Path(packs_dir).resolve()
        self.sample_avatar = Path(sample_avatar) if sample_avatar is not None else None
        self._status: Dict[str, tuple] = {}

    def _root(self, name: str) -> Optional[Path]:
        if not NAME_RE.match(name or ""):
            return None
        if name == SAMPLE and self.sample_avatar is not None:
            return self.sample_avatar
        root = (self.packs_dir / name).resolve()
        return root if root.parent == self.packs_dir else None

    def exists(self, name: str) -> bool:
        root = self._root(name)
        return root is not None and root.exists()

    def pack_dir(self, name: str) -> Optional[Path]:
        root = self._root(name)
        return pack_folder(root) if root is not None else None

    def file(self, name: str, file: str) -> Optional[Path]:
        if file not in PACK_FILES:
            return None
        folder = self.pack_dir(name)
        return folder / file if folder is not None else None

    def status(self, name: str, models: Dict[str, str]) -> Dict:
        """{name, frames, usable, error} of one pack (the JSON is read once per file version)."""
        folder = self.pack_dir(name)
        path = folder / PACK_FILES[1]
        stamp = (path.stat().st_mtime_ns, path.stat().st_size, tuple(sorted(models.items())))
        cached = self._status.get(name)
        if cached is not None and cached[0] == stamp:
            return cached[1]
        info = {"name": name, "frames": None, "usable": False, "error": None}
        try:
            with gzip.open(path, "rt", encoding="utf-8") as fh:
                data = json.load(fh)
            info["frames"] = int(data.get("frame_num", 0))
            check_web_extension(data, models)
            info["usable"] = True
        except (OSError, ValueError) as exc:
            info["error"] = f"unreadable pack: {exc}"
        except UserInputError as exc:
            info["error"] = str(exc)
        self._status[name] = (stamp, info)
        return info

    def list(self, models: Dict[str, str]) -> List[Dict]:
        names = []
        if self.sample_avatar is not None and pack_folder(self.sample_avatar) is not None:
            names.append(SAMPLE)
        if self.packs_dir.is_dir():
            for child in sorted(self.packs_dir.iterdir()):
                if child.name != SAMPLE and NAME_RE.match(child.name) and pack_folder(child) is not None:
                    names.append(child.name)
        return [self.status(n, models) for n in names]
