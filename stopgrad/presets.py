"""Presets: the YAML files under ``configs/``, read as plain YAML, with ``defaults:`` parents merged.

A preset is named by its path below ``configs/`` without ``.yaml`` (``fashion-mnist/simsiam``), or
given as a path to a YAML file. Parents listed under ``defaults:`` are merged first, the preset's
own keys over them; ``view_overrides``, ``local_overrides`` and ``options`` are replaced whole.
"""

from __future__ import annotations

import difflib
from pathlib import Path
from typing import Any

import yaml

from stopgrad.errors import ConfigError, UnsafeFileError

CONFIG_DIR = Path(__file__).resolve().parent.parent / "configs"


def merge(dst: dict, src: dict) -> dict:
    for k, v in src.items():
        if isinstance(v, dict) and isinstance(dst.get(k), dict) and k not in ("view_overrides", "local_overrides", "options"):
            merge(dst[k], v)
        else:
            dst[k] = v
    return dst


def list_presets() -> list[str]:
    """Preset names, e.g. ``fashion-mnist/simsiam``."""
    if not CONFIG_DIR.is_dir():
        return []
    return sorted(str(p.relative_to(CONFIG_DIR).with_suffix("")) for p in CONFIG_DIR.rglob("*.yaml"))


def read_yaml(path: Path) -> Any:
    """``yaml.safe_load`` of a file, with errors that name the file and line.

    Raises:
        UnsafeFileError: The file uses a tag such as ``!!python/object`` (which only an unsafe
            loader would act on; nothing was run).
        ConfigError: The file is not valid YAML.
    """
    try:
        with open(path) as f:
            return yaml.safe_load(f)
    except yaml.constructor.ConstructorError as e:
        mark = f" line {e.problem_mark.line + 1}" if e.problem_mark else ""
        raise UnsafeFileError(f"{path}{mark}: {e.problem}; stopgrad reads plain YAML only (no tags such as "
                              "!!python/...) and ran nothing from it; remove the tag") from e
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f" line {mark.line + 1}" if mark else ""
        problem = getattr(e, "problem", None) or str(e).splitlines()[0]
        raise ConfigError(f"{path}{where}: not valid YAML ({problem}); fix or delete the file") from e
    except UnicodeDecodeError as e:
        raise ConfigError(f"{path}: not a text file ({e.reason}); fix or delete the file") from e


def describe(name: str, width: int = 120) -> str:
    """A preset's one-line description: the first line of its leading comment (cut at `width`)."""
    first = (CONFIG_DIR / f"{name}.yaml").read_text().splitlines()[:1]
    text = first[0].lstrip("#").strip() if first and first[0].startswith("#") else ""
    return text if len(text) <= width else text[: width - 3].rstrip() + "..."


def load_preset(name: str, _seen: tuple[str, ...] = ()) -> dict[str, Any]:
    """Read ``configs/<name>.yaml`` (or a path to a YAML file); ``defaults:`` lists parents."""
    if not isinstance(name, str) or not name:
        raise ConfigError(f"preset name {name!r} is not a name like fashion-mnist/simsiam")
    if name in _seen:
        raise ConfigError(f"preset {name!r} lists itself among its defaults ({' -> '.join(_seen + (name,))})")
    path = Path(name)
    if not (path.suffix in (".yaml", ".yml") and path.is_file()):
        path = CONFIG_DIR / f"{name}.yaml"
    if not path.is_file():
        known = list_presets()
        close = difflib.get_close_matches(name, known, n=1, cutoff=0.4)
        hint = f"; did you mean {close[0]!r}?" if close else ""
        raise ConfigError(f"unknown preset {name!r}{hint} (known: {', '.join(known)})")
    raw = read_yaml(path) or {}
    if not isinstance(raw, dict):
        raise ConfigError(f"preset {path} must be a mapping of sections (data:, train:, ...)")
    parents = raw.pop("defaults", [])
    if not isinstance(parents, (str, list)):
        raise ConfigError(f"preset {path}: defaults must be a preset name or a list of them")
    merged: dict[str, Any] = {}
    for parent in [parents] if isinstance(parents, str) else parents:
        merge(merged, load_preset(parent, _seen + (name,)))
    return merge(merged, raw)
