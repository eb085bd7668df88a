"""The layout rules of docs/ARCHITECTURE.md §8, checked on the source text (no imports run):
every doc citation in the code resolves into docs/, no code cites documents outside the repository,
and imports follow the dependency rule."""
import ast
import re
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
DOCS = REPO / "docs"
SOURCE_DIRS = ("talkingface", "mini_live", "train", "train_audio", "scripts", "bench", "tests")
CITATION = re.compile(r"docs/([A-Za-z_]+\.md)(?: §(\d+(?:\.\d+)*))?")
HEADING = re.compile(r"^#{1,6} (\d+(?:\.\d+)*)[. ]", re.M)
#: Documents that are not in the repository; code must not send readers there.
FOREIGN_DOCS = re.compile(r"reference_system\.md|checkpoint_keys\.md|DESIGN\.md|moda_reference\.md|moda_plan\.md"
                          r"|web_player\.md|shared/docs|(?<![\w/])[Rr]eference §")


def python_files():
    files = sorted(p for p in REPO.glob("*.py"))
    for d in SOURCE_DIRS:
        files += sorted((REPO / d).rglob("*.py"))
    return [f for f in files if ".venv" not in f.parts]


def doc_sections(name: str) -> set:
    path = DOCS / name
    return set(HEADING.findall(path.read_text(encoding="utf-8"))) if path.is_file() else set()


def test_every_doc_citation_resolves():
    sections = {}
    bad = []
    for f in python_files():
        if f.name == Path(__file__).name:
            continue  # this file spells the patterns out
        text = f.read_text(encoding="utf-8")
        for lineno, line in enumerate(text.splitlines(), 1):
            for m in CITATION.finditer(line):
                name, sec = m.group(1), m.group(2)
                if name not in sections:
                    sections[name] = doc_sections(name) if (DOCS / name).is_file() else None
                if sections[name] is None:
                    bad.append(f"{f.relative_to(REPO)}:{lineno}: docs/{name} does not exist")
                elif sec is not None and sec not in sections[name]:
                    bad.append(f"{f.relative_to(REPO)}:{lineno}: docs/{name} has no section {sec}")
            # a section sign must belong to a docs/ citation
            for m in re.finditer(r"§", line):
                if not re.search(r"docs/[A-Za-z_]+\.md $", line[:m.start()]):
                    bad.append(f"{f.relative_to(REPO)}:{lineno}: '§' without a docs/<FILE>.md before it")
    assert not bad, "\n".join(bad)


def test_no_citations_of_documents_outside_the_repository():
    bad = []
    for f in python_files():
        if f.parent.name == "tests" and f.name != Path(__file__).name:
            continue  # tests may compare against external reference files when present (they skip otherwise)
        if f.name == Path(__file__).name:
            continue
        for lineno, line in enumerate(f.read_text(encoding="utf-8").splitlines(), 1):
            if FOREIGN_DOCS.search(line):
                bad.append(f"{f.relative_to(REPO)}:{lineno}: {line.strip()[:100]}")
    assert not bad, "cite docs/<FILE>.md of this repository instead:\n" + "\n".join(bad)


def test_citation_check_catches_bad_targets():
    """The checker itself: a missing file and a missing section are both found."""
    assert "5.6" in doc_sections("REFERENCE.md")
    assert "99.9" not in doc_sections("REFERENCE.md")
    assert doc_sections("NO_SUCH_FILE.md") == set()
    assert FOREIGN_DOCS.search("see reference §3.1") and FOREIGN_DOCS.search("checkpoint_keys.md §2")
    assert not FOREIGN_DOCS.search("see docs/REFERENCE.md §3.1")


# ------------------------------------------------------------------------------- dependency rule
#: package prefix -> prefixes it must never import (docs/ARCHITECTURE.md §8).
FORBIDDEN = {
    "talkingface.models": ("mini_live", "talkingface.data", "talkingface.eval", "talkingface.util.media",
                           "train", "train_audio", "talkingface.render_model", "talkingface.render_model_mini", "talkingface.mini_",
                           "talkingface.dhlive_pipeline", "talkingface.realtime", "talkingface.products"),
    "talkingface.data": ("mini_live", "talkingface.eval", "train", "train_audio", "talkingface.render_model",
                         "talkingface.mini_", "talkingface.dhlive_pipeline", "talkingface.realtime",
                         "talkingface.products"),
    "talkingface.util": ("mini_live", "talkingface.models", "talkingface.data", "talkingface.eval", "train",
                         "train_audio", "talkingface.render_model", "talkingface.render_model_mini", "talkingface.mini_", "talkingface.realtime"),
    "talkingface.config": ("mini_live", "talkingface.models", "talkingface.data", "talkingface.eval", "torch",
                           "train", "train_audio", "talkingface.mini_", "talkingface.render_model"),
    "talkingface.utils": ("mini_live", "talkingface.models", "talkingface.data", "torch"),
    "talkingface.run_utils": ("mini_live", "talkingface.models", "talkingface.data", "torch"),
    "talkingface.mediapipe_utils": ("mini_live", "talkingface.models", "talkingface.data", "torch"),
    "talkingface.errors": ("talkingface.", "mini_live"),
    "talkingface.products": ("talkingface.mini_", "talkingface.dhlive_pipeline", "talkingface.render_model",
                             "torch", "mini_live"),
    "talkingface.eval": ("mini_live.train", "train", "train_audio"),
    "talkingface": ("train", "train_audio", "scripts", "bench", "tests"),
    # the renderer and mesh library of mini_live (its scripts, train.py and evaluate.py, may use anything)
    "mini_live.obj": ("train", "train_audio", "talkingface.eval", "talkingface.realtime", "talkingface.products",
                      "talkingface.mini_", "talkingface.render_model_mini", "talkingface.dhlive_pipeline"),
    "mini_live.render": ("talkingface.eval", "talkingface.realtime", "talkingface.products", "talkingface.mini_",
                         "talkingface.render_model_mini"),
    "mini_live.opengl_render_interface": ("talkingface.",),
}
#: Deliberate exceptions, each with its reason (docs/ARCHITECTURE.md §8).
ALLOWED = {
    # training sources may be labelled with the renderer's own procedural teeth (renderer_teeth_p), so the
    # network sees at training time exactly the teeth geometry the mesh draws at inference
    ("talkingface.data.teeth_labels", "mini_live.obj.wrap_utils"),
}


def module_name(path: Path) -> str:
    rel = path.relative_to(REPO).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def imports_of(path: Path):
    """Every module an import statement of ``path`` names (module level and in functions)."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for a in node.names:
                yield node.lineno, a.name
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            yield node.lineno, node.module


def _matches(imported: str, banned: str) -> bool:
    """``banned`` ending in "." or "_" is a name prefix; otherwise a module and its submodules."""
    if banned.endswith((".", "_")):
        return imported.startswith(banned)
    return imported == banned or imported.startswith(banned + ".")


def violations(module: str, imported: str):
    """(owner, banned prefix) pairs that ``module`` importing ``imported`` breaks."""
    if imported == module or imported.startswith(module + "."):
        return  # a package may import its own submodules
    for owner, banned in FORBIDDEN.items():
        if module == owner or module.startswith(owner + "."):
            for b in banned:
                if _matches(imported, b):
                    yield owner, b


def test_imports_follow_the_dependency_rule():
    bad = []
    for f in python_files():
        mod = module_name(f)
        if not mod.startswith(("talkingface", "mini_live")):
            continue
        for lineno, imported in imports_of(f):
            if (mod, imported) in ALLOWED:
                continue
            for owner, rule in violations(mod, imported):
                bad.append(f"{f.relative_to(REPO)}:{lineno}: {mod} imports {imported} ({owner} must not import {rule})")
    assert not bad, "\n".join(bad)


@pytest.mark.parametrize("module, imported, broken", [
    ("talkingface.models.DINet", "mini_live.render", True),
    ("talkingface.data.few_shot_dataset", "talkingface.mini_pipeline", True),
    ("talkingface.render_model_mini", "mini_live.render", False),
    ("talkingface.util.media", "talkingface.errors", False),
])
def test_dependency_rule_checker(module, imported, broken):
    assert bool(list(violations(module, imported))) is broken


# --------------------------------------------------------------------------------- default paths
PATHS_MODULE = REPO / "talkingface" / "config" / "paths.py"
ROOT_NAMES = re.compile(r"^(REPO_ROOT|REPO|ROOT|ROOT_DIR|PACKAGE_ROOT|PROJECT_ROOT|REPO_DIR)$")
#: First path components that name a default location of the project (checkpoints, meshes, avatars, ...).
DEFAULT_DIRS = ("checkpoint", "video_data", "mini_live", "talkingface", "shader")


def _path_literal(node) -> bool:
    return isinstance(node, ast.Constant) and isinstance(node.value, str) and \
        node.value.replace("\\", "/").split("/")[0] in DEFAULT_DIRS


def path_definitions(path: Path):
    """(line, what) for every place ``path`` derives a project location itself instead of taking it
    from talkingface/config/paths.py: a root constant, ``__file__`` arithmetic, or a default folder
    name joined into a path (``X / "checkpoint"``, ``Path("checkpoint/...")``)."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    for node in ast.walk(tree):
        if isinstance(node, (ast.Assign, ast.AnnAssign)):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            for t in targets:
                if isinstance(t, ast.Name) and ROOT_NAMES.match(t.id):
                    yield node.lineno, f"defines {t.id}"
        elif isinstance(node, ast.Name) and node.id == "__file__":
            yield node.lineno, "derives a location from __file__"
        elif isinstance(node, ast.BinOp) and isinstance(node.op, ast.Div) and _path_literal(node.right):
            yield node.lineno, f"joins {node.right.value!r} into a path"
        elif isinstance(node, ast.Call) and getattr(node.func, "id", None) == "Path" and node.args \
                and _path_literal(node.args[0]):
            yield node.lineno, f"builds Path({node.args[0].value!r})"


def test_default_paths_only_in_config_paths():
    bad = []
    for f in python_files():
        if f == PATHS_MODULE or f.parent.name in ("tests", "bench"):
            continue  # tests and benchmarks locate their own fixtures and result folders
        for lineno, what in path_definitions(f):
            bad.append(f"{f.relative_to(REPO)}:{lineno}: {what}")
    assert not bad, "take default locations from talkingface/config/paths.py:\n" + "\n".join(bad)


def test_path_check_catches_definitions(tmp_path):
    sample = tmp_path / "m.py"
    sample.write_text('from pathlib import Path\nREPO_ROOT = Path(__file__).parent\nX = REPO_ROOT / "checkpoint"\n'
                      'Y = Path("video_data/test")\nZ = Path("output.mp4")\n')
    found = [what for _, what in path_definitions(sample)]
    assert found and "defines REPO_ROOT" in found and any("checkpoint" in w for w in found)
    assert any("video_data" in w for w in found) and not any("output" in w for w in found)
