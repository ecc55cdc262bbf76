"""Claim sets on the papers' real datasets: grids of the ``configs/<dataset>/`` presets.

A :class:`RealClaimSet` names its preset folders (``stl10``, ``cifar10``, ``imagenet-100`` ...),
the variants it trains in each (a preset plus overrides), and a ``decide`` function that turns
the folder's aggregated grid into verdicts, with criteria fixed in the claim-set module before
any full run. Running one:

1. states its data requirement and its cost up front (GPU hours from :mod:`stopgrad.cost`, an
   estimate from FLOPs unless measured);
2. checks that every dataset is there before training anything, and stops with the loader's own
   message (what is missing, where it looked, how to fix it) if one is not;
3. runs the grid with :func:`stopgrad.sweep.run_grid`, which skips finished cells and resumes
   killed ones, so a half-finished grid continues where it stopped.

``--quick`` trains every cell for 2 steps of a tiny ResNet on whatever archives are found (the
test suite makes tiny ones in the official formats, with ``data.verify=false``): it checks the
machinery end to end on a CPU and decides nothing.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Sequence

from stopgrad.config import resolve
from stopgrad.cost import preset_cost
from stopgrad.reproduce.base import Claim, ClaimSet, Verdict, register_claim_set
from stopgrad.sweep import Variant, collect, run_variants

# train.channels_last=false: torch 2.13's CPU backward of a width-0.125 ResNet-18 with the ImageNet stem
# (an 8-channel stem) at 224 px in channels_last crashes (SIGSEGV in libtorch_cpu) on a Xeon with AMX;
# contiguous tensors run. Measured 2026-12-02; the real presets' full widths are not affected.
QUICK_EXTRA = ("train.steps=2", "data.batch_size=4", "model.width=0.125", "data.verify=false",
               "data.download=false", "train.ckpt_every=1000", "eval.knn_every=0",
               "eval.knn_k=3", "eval.linear=false", "train.diag_every=1", "train.precision=fp32",
               "train.channels_last=false")
DATA_NEEDED = {
    "cifar10": "cifar-10-python.tar.gz (170 MB; downloaded with data.download=true)",
    "cifar100": "cifar-100-python.tar.gz (161 MB; downloaded with data.download=true)",
    "stl10": "stl10_binary.tar.gz (2.6 GB; downloaded with data.download=true)",
    "image-folder": "ImageNet-100: an image folder with train/<wnid>/ and val/<wnid>/ (data.root=...)",
}

Decide = Callable[[str, dict[str, dict[str, Any]], dict[str, list[dict[str, Any]]]], list[Verdict]]


@dataclass(frozen=True)
class RealClaimSet:
    """A real-data claim set: preset folders x variants x seeds, decided per folder."""

    name: str
    paper: str
    description: str
    folders: tuple[str, ...]
    variants: Callable[[str], list[Variant]]  # folder -> its variants (full settings)
    claims: dict[str, Claim]  # every claim the decide function may return, by id
    decide: Decide  # (folder, aggregated table, per-seed rows by variant) -> verdicts
    default_seeds: int = 3


def quick_variants(vs: Sequence[Variant]) -> list[Variant]:
    """The variants with :data:`QUICK_EXTRA` (and small decoded images for an image folder)."""
    def extra(v: Variant) -> tuple[str, ...]:
        folder = resolve(v.preset, list(v.overrides)).data.dataset == "image-folder"
        return QUICK_EXTRA + (("data.image_size=64",) if folder else ())
    return [Variant(v.name, v.preset, v.overrides + extra(v)) for v in vs]


def plan(rcs: RealClaimSet, seeds: int) -> dict[str, Any]:
    """What the full grid needs: per folder the data, the runs and their estimated GPU hours."""
    out: dict[str, Any] = {}
    for folder in rcs.folders:
        vs = rcs.variants(folder)
        cfgs = [resolve(v.preset, list(v.overrides)) for v in vs]
        costs = [preset_cost(c, v.preset) for c, v in zip(cfgs, vs)]
        out[folder] = {"dataset": cfgs[0].data.dataset, "data": DATA_NEEDED.get(cfgs[0].data.dataset, ""),
                       "runs": len(vs) * seeds, "gpu_hours": round(sum(c.gpu_hours for c in costs) * seeds, 2),
                       "gpu_hours_source": "; ".join(sorted({c.source for c in costs}))}
    return out


def check_data(preset: str, overrides: Sequence[str]) -> None:
    """Raise the loader's own error (a :class:`~stopgrad.errors.StopgradError` naming the missing
    files, the places searched and the fix) when a preset's dataset is not there."""
    from stopgrad.data.folder import class_dirs
    from stopgrad.data.registry import load_dataset
    from stopgrad.errors import ConfigError

    cfg = resolve(preset, list(overrides))
    d = cfg.data
    if d.dataset == "image-folder":
        if not d.root:
            raise ConfigError(f"{preset}: ImageNet-100 is an image folder and its place is not set; "
                              f"export STOPGRAD_IMAGENET100=/path/to/imagenet-100 (holding train/<wnid>/ and "
                              f"val/<wnid>/)")
        for split in ("train", "val"):
            if not (Path(d.root) / split).is_dir() or not class_dirs(Path(d.root) / split):
                raise ConfigError(f"{preset}: {Path(d.root) / split} has no class folders; data.root must hold "
                                  f"train/<wnid>/*.JPEG and val/<wnid>/*.JPEG")
        return
    load_dataset(d.dataset, "test", root=d.root, download=d.download, verify=d.verify, label_set=d.label_set)


def data_overrides() -> tuple[str, ...]:
    """``data.root`` of the ImageNet-100 folder, from ``$STOPGRAD_IMAGENET100`` when set."""
    import os

    root = os.environ.get("STOPGRAD_IMAGENET100")
    return (f"data.root={root}",) if root else ()


def make_run(rcs: RealClaimSet) -> Callable[..., tuple[list[Verdict], dict]]:
    def run(out: Path, seeds: int, quick: bool, log: Callable[[str], None] = print) -> tuple[list[Verdict], dict]:
        costs = plan(rcs, seeds)
        for folder, c in costs.items():
            log(f"{rcs.name}: {folder}: {c['runs']} runs, {c['gpu_hours']} GPU hours ({c['gpu_hours_source']}); "
                f"needs {c['data']}")
        grids = {}
        for folder in rcs.folders:
            vs = rcs.variants(folder)
            vs = [Variant(v.name, v.preset, v.overrides + (data_overrides() if "imagenet" in folder else ()))
                  for v in vs]
            grids[folder] = quick_variants(vs) if quick else vs
            check_data(grids[folder][0].preset, grids[folder][0].overrides)
        verdicts: list[Verdict] = []
        tables = {}
        for folder, vs in grids.items():
            root = out / "runs" / folder
            jobs, threads = (2, 1) if quick else (1, 2)  # a full grid: one run at a time on the one GPU
            table = run_variants(vs, range(seeds), root, jobs=jobs, threads=threads, log=log)
            per_seed = {v.name: [{**collect(root / v.name / f"seed{s}"), "run_dir": root / v.name / f"seed{s}"}
                                 for s in range(seeds)] for v in vs}
            tables[folder] = table
            verdicts += rcs.decide(folder, table, per_seed)
        settings = {"folders": list(rcs.folders), "seeds": seeds, "plan": costs,
                    "variants": {f: {v.name: [v.preset, *v.overrides] for v in vs} for f, vs in grids.items()},
                    "tables": tables, "runs": str(out / "runs")}
        return verdicts, settings

    return run


def register(rcs: RealClaimSet) -> RealClaimSet:
    register_claim_set(ClaimSet(name=rcs.name, paper=rcs.paper, description=rcs.description, run=make_run(rcs),
                                default_seeds=rcs.default_seeds, quick_seeds=1))
    return rcs


def mean(table: dict[str, dict[str, Any]], variant: str, key: str = "knn_top1") -> float:
    """The grid's mean of ``key`` for ``variant`` (nan when absent)."""
    return table.get(variant, {}).get(key, (float("nan"), 0.0))[0]


def claim_for(claims: dict[str, Claim], cid: str, folder: str) -> Claim:
    """A claim of ``claims`` specialised to one folder: its id and statement name the dataset."""
    c = claims[cid]
    return Claim(id=f"{cid}@{folder}", source=c.source, statement=f"{c.statement} ({folder})", measure=c.measure,
                 criterion=c.criterion, paper_value=c.paper_value)
