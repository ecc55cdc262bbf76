"""The predictor-family table on Fashion-MNIST: 8 heads x 3 seeds, BYOL-style (EMA target).

Every variant is ``fashion-mnist/byol`` (ConvNet, ``heads=small``, normalised MSE, EMA momentum
0.99 -> 1 cosine) with only ``method.predictor`` changed, trained for the same budget of
``--epochs`` (3 epochs = 702 steps of 256, about 5 minutes per run on one thread with two runs
side by side on this 2-core CPU), then evaluated by kNN (k=200, T=0.1) and the linear probe on the
full test set. Runs go to ``ROOT/<variant>/seed<k>``; rerunning skips finished runs and resumes
killed ones. Prints (and writes ``ROOT/table.md`` and ``ROOT/table.json``) mean ± std over seeds.

    .venv/bin/python benchmarks/predictor_table.py --out runs/predictor-table --seeds 0 1 2 --jobs 2
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from stopgrad.config import resolve
from stopgrad.sweep import STRONG_FMNIST_VIEWS, Variant, aggregate, bar_figure, cells, markdown, run_grid

BASE = "fashion-mnist/byol"
VIEWS = STRONG_FMNIST_VIEWS
TRACK = "method.track_correlation=true"  # log eigen-alignment of learned linear heads with F
VARIANTS = [
    Variant("byol-mlp", BASE, (VIEWS,)),
    Variant("byol-linear", BASE, (VIEWS, "method.predictor=linear", TRACK)),
    Variant("directpred", BASE, (VIEWS, "method.predictor=directpred",)),
    Variant("directcopy", BASE, (VIEWS, "method.predictor=directcopy",)),
    Variant("identity-init", BASE, (VIEWS, "method.predictor=identity", TRACK)),
    Variant("fixed-diagonal", BASE, (VIEWS, "method.predictor=fixed-diagonal", TRACK)),
    Variant("frozen-identity", BASE, (VIEWS, "method.predictor=frozen-identity",)),
    Variant("no-predictor", BASE, (VIEWS, "method.predictor=none",)),
]


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", default="runs/predictor-table")
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    p.add_argument("--epochs", type=float, default=3.0)
    p.add_argument("--jobs", type=int, default=2)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--only", nargs="*", help="run only these variants")
    args = p.parse_args()
    extra = (f"train.epochs={args.epochs}", "eval.knn_every=0", "eval.linear=true")
    variants = [v for v in VARIANTS if not args.only or v.name in args.only]
    for v in variants:  # a bad override fails here, before any run starts
        resolve(v.preset, [*v.overrides, *extra])
    failed = run_grid(cells(variants, args.seeds, Path(args.out), extra), args.jobs, args.threads)
    table = aggregate(Path(args.out))
    text = markdown(table, [v.name for v in VARIANTS])
    print(text)
    Path(args.out, "table.md").write_text(text + "\n")
    Path(args.out, "table.json").write_text(json.dumps(table, indent=1) + "\n")
    print(bar_figure(table, Path(args.out, "table.png"), [v.name for v in VARIANTS]))
    if failed:
        raise SystemExit(f"{len(failed)} runs failed: " + ", ".join(f"{c.variant.name}/seed{c.seed}" for c in failed))


if __name__ == "__main__":
    main()
