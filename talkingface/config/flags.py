"""Config dataclass <-> command-line flags, one way for every training script.

    add_config_flags(parser, MiniTrainConfig)            # one --flag per field, default = the field's
    cfg = config_from_args(MiniTrainConfig, args)        # back to a typed config
    card["config"] = config_dict(cfg)                    # JSON-safe, for the checkpoint's model card

A field's flag is ``--<field name>`` with the field's type and default. Field ``metadata`` may add:
``help`` (text), ``aliases`` (more option strings, e.g. an older spelling), ``nargs`` / ``action``
(lists: ``"+"`` or ``"append"``), ``required``, ``choices``, and ``flag=False`` for a field that is
not a command-line option (set by the script, e.g. ``device`` after ``resolve_device``).
Booleans become ``--x`` / ``--no-x`` switches. ``Optional[X]`` fields take an X and default to None.
"""
from __future__ import annotations

import argparse
import dataclasses
import typing
from pathlib import Path
from typing import Any, Dict, Iterable, Optional, Type, TypeVar, Union

C = TypeVar("C")


def _base_type(hint: Any) -> Any:
    """int for Optional[int], str for List[str], ... (the type each command-line value is parsed as)."""
    origin = typing.get_origin(hint)
    if origin is Union:
        args = [a for a in typing.get_args(hint) if a is not type(None)]
        return _base_type(args[0]) if len(args) == 1 else str
    if origin in (list, tuple):
        args = typing.get_args(hint)
        return _base_type(args[0]) if args else str
    return hint


def config_fields(cls: type) -> Iterable[dataclasses.Field]:
    """The fields of ``cls`` that are command-line flags."""
    return [f for f in dataclasses.fields(cls) if f.metadata.get("flag", True)]


def add_config_flags(parser: argparse.ArgumentParser, cls: type, exclude: Iterable[str] = (),
                     only: Optional[Iterable[str]] = None) -> None:
    """Add one flag per field of the config dataclass ``cls`` (see the module doc), all but ``exclude``
    (or just the fields named in ``only``)."""
    hints = typing.get_type_hints(cls)
    defaults = cls()
    skip = set(exclude)
    keep = None if only is None else set(only)
    for f in config_fields(cls):
        if f.name in skip or (keep is not None and f.name not in keep):
            continue
        meta = f.metadata
        default = getattr(defaults, f.name)
        names = [f"--{f.name}", *meta.get("aliases", ())]
        kwargs: Dict[str, Any] = {"dest": f.name, "help": f"{meta.get('help', '')} (default: {default})".strip()}
        if meta.get("required"):
            kwargs.update(required=True, help=meta.get("help", ""))
        else:
            kwargs["default"] = default
        kind = _base_type(hints[f.name])
        if kind is bool:
            kwargs["action"] = argparse.BooleanOptionalAction
        else:
            kwargs["type"] = Path if kind is Path else kind
            for key in ("nargs", "action", "choices"):
                if key in meta:
                    kwargs[key] = meta[key]
            if kwargs.get("action") == "append":
                kwargs["default"] = []
        parser.add_argument(*names, **kwargs)


def config_from_args(cls: Type[C], args: argparse.Namespace, **overrides: Any) -> C:
    """The config ``cls`` from parsed ``args`` (fields without a flag keep their defaults unless in
    ``overrides``)."""
    values = {f.name: getattr(args, f.name) for f in config_fields(cls) if hasattr(args, f.name)}
    values.update(overrides)
    return cls(**values)


def _json_safe(value: Any) -> Any:
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, (list, tuple)):
        return [_json_safe(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _json_safe(v) for k, v in value.items()}
    return value


def config_dict(cfg: Any) -> Dict[str, Any]:
    """A config dataclass as a JSON-safe dict (paths as strings, tuples as lists): what model cards record."""
    return _json_safe(dataclasses.asdict(cfg))
