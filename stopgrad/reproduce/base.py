"""Claims, their verdicts, and the files a reproduction writes.

A *claim set* reproduces one paper: it runs its experiments over seeds, draws figures and returns
one :class:`Verdict` per :class:`Claim`. A claim carries, fixed in the code before anything runs,
the paper's statement, the paper's own figure or value where it gives one, and the criterion that
decides it (a threshold on a per-seed measurement, usually "holds in at least a given fraction of
seeds"). :func:`run_claim_set` writes ``claims.json`` and a self-contained ``report.html``.
"""

from __future__ import annotations

import json
import math
import platform
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Sequence

import torch

from stopgrad.errors import StopgradError
from stopgrad.sweep import mean_std


@dataclass(frozen=True)
class Claim:
    """One statement of a paper and how stopgrad decides it.

    Attributes:
        id: short stable identifier, e.g. ``"thm1-two-features"``.
        source: where the paper states it (``"Thm 1 / Cor 2"``, ``"Fig. 4"``).
        statement: the paper's claim, in our words.
        paper_value: the paper's figure or number, or ``None`` when it gives none.
        measure: what is measured per seed (the quantity behind ``measured``).
        criterion: the rule, written before the run, that turns measurements into ``holds``.
    """

    id: str
    source: str
    statement: str
    measure: str
    criterion: str
    paper_value: str | None = None


@dataclass
class Verdict:
    """A claim with its measurement over seeds and whether it holds."""

    claim: Claim
    values: list[float]  # one per seed (or per setting), the quantity named by ``claim.measure``
    holds: bool
    detail: str = ""
    figures: list[str] = field(default_factory=list)
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def mean(self) -> float:
        return sum(self.values) / len(self.values) if self.values else math.nan

    @property
    def std(self) -> float:
        n = len(self.values)
        if n < 2:
            return 0.0
        m = self.mean
        return math.sqrt(sum((v - m) ** 2 for v in self.values) / (n - 1))

    def to_json(self) -> dict[str, Any]:
        c = self.claim
        return {"id": c.id, "source": c.source, "statement": c.statement, "paper_value": c.paper_value,
                "measure": c.measure, "measured": {"mean": self.mean, "std": self.std, "n": len(self.values),
                                                   "values": self.values},
                "criterion": c.criterion, "holds": bool(self.holds), "detail": self.detail,
                "figures": self.figures, **({"extra": self.extra} if self.extra else {})}


SMOKE_TEST = ("SMOKE TEST (--quick): too few seeds and steps for a verdict; this shows the pipeline runs end "
              "to end, not whether the claims hold. Run without --quick for the verdicts.")


def verdict_words(holds: bool, quick: bool) -> str:
    """The one wording of a verdict, the same on the console, in ``claims.json`` and in the HTML."""
    words = "holds" if holds else "does not hold"
    return f"smoke test, not a verdict ({words})" if quick else words


def mean_of(values: Sequence[float]) -> float:
    """Mean over seeds (nan for none): :func:`stopgrad.sweep.mean_std`'s first half."""
    return mean_std(values)[0]


def std_of(values: Sequence[float]) -> float:
    """Sample standard deviation over seeds (0 for one value, nan for none)."""
    return mean_std(values)[1]


def fraction(flags: Sequence[bool]) -> list[float]:
    """Per-seed booleans as 0/1 values, so that their mean is the fraction of seeds."""
    return [1.0 if f else 0.0 for f in flags]


@dataclass
class ClaimSet:
    """A paper's reproduction: ``run(out, seeds, quick, log)`` returns verdicts and settings.

    ``views``: for a claim set whose training runs may take any view preset (the Fashion-MNIST ones),
    the one they train by default; its ``run`` then also takes ``views=`` (``stopgrad reproduce NAME
    --views PRESET``). ``None`` for the theory and toy sets, which make no image views, and for the
    real-data sets, whose views come with their datasets' presets. ``backbone``: likewise, for a set
    whose runs may pin either Fashion-MNIST ConvNet (a key of ``stopgrad.sweep.FMNIST_BACKBONES``), the
    default one; its ``run`` then also takes ``backbone=`` (``stopgrad reproduce NAME --backbone B``).
    """

    name: str
    paper: str
    description: str
    run: Callable[..., tuple[list[Verdict], dict[str, Any]]]
    default_seeds: int = 10
    quick_seeds: int = 4
    views: str | None = None
    backbone: str | None = None


CLAIM_SETS: dict[str, ClaimSet] = {}


def register_claim_set(cs: ClaimSet) -> ClaimSet:
    if cs.name in CLAIM_SETS:
        raise ValueError(f"claim set {cs.name!r} registered twice")
    CLAIM_SETS[cs.name] = cs
    return cs


def get_claim_set(name: str) -> ClaimSet:
    if name not in CLAIM_SETS:
        raise KeyError(f"unknown claim set {name!r}; known: {', '.join(sorted(CLAIM_SETS))}")
    return CLAIM_SETS[name]


def claim_set_options(cs: ClaimSet, views: str | None, backbone: str | None = None) -> dict[str, str]:
    """``{"views": preset, "backbone": name}`` to pass to ``cs.run`` (the given ones or the set's
    defaults), each only for a set that takes it; an option the set cannot take, or an unknown value,
    is a :class:`StopgradError` naming the fix."""
    from stopgrad.augment import PRESETS
    from stopgrad.sweep import FMNIST_BACKBONES

    options = (("views", views, cs.views, PRESETS, "view preset",
                "its runs' views are fixed by the claim set or its dataset presets"),
               ("backbone", backbone, cs.backbone, FMNIST_BACKBONES, "backbone", "it is not a Fashion-MNIST ConvNet set"))
    chosen = {}
    for key, given, default, known, noun, why in options:
        if default is None:
            if given is not None:
                raise StopgradError(f"claim set {cs.name} does not take --{key} ({why}); drop --{key}")
        elif given is not None and given not in known:
            raise StopgradError(f"--{key} {given}: no such {noun}; choose one of {', '.join(sorted(known))}")
        else:
            chosen[key] = given or default
    return chosen


def run_claim_set(name: str, out: Path, seeds: int | None = None, quick: bool = False,
                  log: Callable[[str], None] = print, views: str | None = None,
                  backbone: str | None = None) -> dict[str, Any]:
    """Run a claim set and write ``out/claims.json``, its figures and ``out/report.html``.
    ``views`` picks the view preset of a set made of image training runs, ``backbone`` the ConvNet of
    a Fashion-MNIST set (default: the set's)."""
    from stopgrad.reproduce.report import write_claims_report
    from stopgrad.rundir import git_revision

    cs = get_claim_set(name)
    n = seeds if seeds is not None else (cs.quick_seeds if quick else cs.default_seeds)
    if n < 1:
        raise ValueError(f"--seeds must be >= 1, got {n}")
    chosen = claim_set_options(cs, views, backbone)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    t0 = time.time()
    verdicts, settings = cs.run(out=out, seeds=n, quick=quick, log=log, **chosen)
    runtime = time.time() - t0
    claims = [{**v.to_json(), "verdict": verdict_words(bool(v.holds), quick)} for v in verdicts]
    doc = {"claim_set": cs.name, "paper": cs.paper, "description": cs.description, "seeds": n,
           "quick": quick, "mode": "smoke test" if quick else "full", **chosen, **({"note": SMOKE_TEST} if quick else {}),
           "runtime_s": round(runtime, 1), "command": sys.argv, "git": git_revision(),
           "torch": torch.__version__, "machine": platform.machine(),
           "created": time.strftime("%Y-%m-%d %H:%M:%S"), "settings": settings,
           "claims": claims, "holds": sum(v.holds for v in verdicts), "total": len(verdicts)}
    tmp = out / "claims.json.tmp"
    tmp.write_text(json.dumps(doc, indent=1, default=_jsonable) + "\n")
    tmp.replace(out / "claims.json")
    write_claims_report(doc, out, out / "report.html")
    return doc


def _jsonable(o: Any) -> Any:
    if isinstance(o, (torch.Tensor,)):
        return o.tolist()
    if isinstance(o, Path):
        return str(o)
    if isinstance(o, tuple):
        return list(o)
    raise TypeError(f"cannot write {type(o).__name__} to claims.json")
