"""The documentation of every config key, read from the dataclasses themselves, for ``stopgrad config``.

Each key's type and default come from its dataclass field; its one-line help is the comment on
the field's line in the source (``epochs: float = 10.0  # ...``) or, for a field without one, the
class docstring's first line. :func:`render` prints a resolved config as YAML with that
documentation beside each value, so what a run will use and what each knob means are one command
away.

Examples:
    >>> from stopgrad.config import resolve
    >>> "epochs: 5.0" in render(resolve("fashion-mnist/simsiam", ["train.epochs=5"]))
    True
"""

from __future__ import annotations

import ast
import dataclasses
import functools
import inspect
import io
import tokenize
import typing
from typing import Any

import yaml

from stopgrad.config import SECTIONS, RunConfig


@dataclasses.dataclass(frozen=True)
class KeyDoc:
    key: str
    type: str
    default: Any
    help: str


def _type_text(tp: Any) -> str:
    text = str(tp).replace("typing.", "").replace("<class '", "").replace("'>", "")
    return text.replace("NoneType", "None")


@functools.lru_cache(maxsize=None)
def field_comments(cls: type) -> dict[str, str]:
    """``{field: comment}`` from the source lines of ``cls`` (and its bases)."""
    out: dict[str, str] = {}
    for klass in reversed(cls.__mro__):
        if not dataclasses.is_dataclass(klass):
            continue
        try:
            source = inspect.getsource(klass)
        except (OSError, TypeError):
            continue
        source = inspect.cleandoc("\n" + source) if source.startswith((" ", "\t")) else source
        comments, continuation = {}, set()
        for tok in tokenize.generate_tokens(io.StringIO(source).readline):
            if tok.type == tokenize.COMMENT:
                comments[tok.start[0]] = tok.string.lstrip("#").strip()
                if tok.line.strip().startswith("#") and tok.string[1:].startswith("   "):
                    continuation.add(tok.start[0])  # a comment-only line aligned under the one above
        tree = ast.parse(source)
        body = tree.body[0].body if tree.body and isinstance(tree.body[0], ast.ClassDef) else []
        for node in body:
            if isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
                line = node.end_lineno or node.lineno
                if line not in comments:
                    continue
                parts = [comments[line]]
                while line + 1 in continuation:
                    line += 1
                    parts.append(comments[line])
                out[node.target.id] = " ".join(parts)
    return out


def docs_of(cls: type, prefix: str) -> list[KeyDoc]:
    hints = typing.get_type_hints(cls)
    comments = field_comments(cls)
    summary = ""
    rows = []
    for f in dataclasses.fields(cls):
        if f.default is not dataclasses.MISSING:
            default = f.default
        elif f.default_factory is not dataclasses.MISSING:  # type: ignore[misc]
            default = f.default_factory()  # type: ignore[misc]
        else:
            default = None
        rows.append(KeyDoc(prefix + f.name, _type_text(hints[f.name]), default, comments.get(f.name, summary)))
    return rows


def key_docs(cfg: RunConfig) -> dict[str, KeyDoc]:
    """Documentation of every key of ``cfg``: its sections and its method's own ``Config``."""
    from stopgrad.methods import get_method

    docs = [KeyDoc("method.name", "str", "simsiam", "the method (`stopgrad methods` lists them)")]
    docs += docs_of(get_method(cfg.method_name).Config, "method.")
    for sec, cls in SECTIONS.items():
        docs += docs_of(cls, f"{sec}.")
    return {d.key: d for d in docs}


def _plain(value: Any) -> Any:
    if isinstance(value, tuple):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    return value


def _yaml_value(value: Any) -> str:
    return yaml.safe_dump(_plain(value), default_flow_style=True, width=10_000).strip().removesuffix("...").strip()


def render(cfg: RunConfig, show_help: bool = True) -> str:
    """The resolved config as YAML; with ``show_help`` each key carries ``# type, default, help``."""
    docs = key_docs(cfg)
    doc = cfg.to_dict()
    lines = [f"# resolved config (preset: {cfg.preset or 'none'}); reload with `stopgrad train <file>.yaml`",
             f"preset: {_yaml_value(doc.pop('preset'))}"]
    entries: list[tuple[str, str]] = []
    for section, values in doc.items():
        entries.append((f"{section}:", ""))
        for key, value in values.items():
            full = f"{section}.{key}"
            text = f"  {key}: {_yaml_value(value)}"
            d = docs.get(full)
            note = ""
            if show_help and d is not None:
                changed = "" if _plain(d.default) == value else "  [changed]"
                note = f"{d.type}, default {_yaml_value(d.default)}{changed}" + (f"; {d.help}" if d.help else "")
            entries.append((text, note))
    width = min(48, max(len(t) for t, _ in entries))
    for text, note in entries:
        lines.append(f"{text:<{width}}  # {note}" if note else text)
    return "\n".join(lines) + "\n"


def sections_help() -> str:
    """One line per section, for ``stopgrad train --help``."""
    parts = [f"  {sec:<7} {(inspect.getdoc(cls) or '').splitlines()[0]}" for sec, cls in SECTIONS.items()]
    return "\n".join(["  method  the method's own keys (method.name=..., then its Config)", *parts])
