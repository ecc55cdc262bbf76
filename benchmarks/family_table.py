"""The methods the center-vector paper unifies, on Fashion-MNIST: 9 variants x 3 seeds.

Every variant is its ``fashion-mnist/<method>`` preset (the shared ConvNet recipe) trained for
about 5 minutes on one thread with two runs side by side on this 2-core CPU: 4 epochs for the
methods without a target network, 3 for those with an EMA target/teacher (BYOL, DINO), then kNN
(k=200, T=0.1) and the linear probe on the full test set. Runs go to ``ROOT/<variant>/seed<k>``
(rerunning skips finished runs); prints and writes ``ROOT/table.md`` / ``ROOT/table.json``.

    .venv/bin/python benchmarks/family_table.py --out runs/family-table --seeds 0 1 2 --jobs 2
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from stopgrad.config import resolve
from stopgrad.sweep import STRONG_FMNIST_VIEWS, Variant, aggregate, bar_figure, cells, markdown, run_grid

VIEWS = STRONG_FMNIST_VIEWS
E4, E3 = ("train.epochs=4", VIEWS), ("train.epochs=3", VIEWS)
VARIANTS = [
    Variant("simclr", "fashion-mnist/simclr", E4),
    Variant("barlow", "fashion-mnist/barlow", E4),
    Variant("barlow-no-offdiag", "fashion-mnist/barlow", (*E4, "method.off_diagonal=false")),
    Variant("swav", "fashion-mnist/swav", E4),
    Variant("swav-fixed-prototypes", "fashion-mnist/swav", (*E4, "method.learnable_prototypes=false")),
    Variant("dino", "fashion-mnist/dino", E3),
    Variant("dino-no-centering", "fashion-mnist/dino", (*E3, "method.centering=false")),
    Variant("simsiam", "fashion-mnist/simsiam", E4),
    Variant("byol", "fashion-mnist/byol", E3),
]


#: ‖s‖ of the L2-normalised head outputs (every method; for DINO its K logits) and, where the
#: projector ends in BN (SimCLR, Barlow Twins, SimSiam, BYOL), of its input before BN.
COLUMNS = (("knn_top1", "kNN top-1", 4, True), ("linear_top1", "linear top-1", 4, True),
           ("diag/center_norm", "‖s‖ (output)", 3, False), ("diag/center_norm_pre_bn", "‖s‖ (pre-BN)", 3, False),
           ("diag/effective_rank", "eff. rank (output)", 0, False),
           ("diag/feat_effective_rank", "eff. rank (backbone)", 0, False), ("wall_s", "train wall (s)", 0, False))
FIGURE_KEYS = (("knn_top1", "kNN top-1"), ("linear_top1", "linear top-1"), ("diag/center_norm", "‖s‖ (output)"),
               ("diag/effective_rank", "effective rank (output)"))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", default="runs/family-table")
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    p.add_argument("--jobs", type=int, default=2)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--only", nargs="*", help="run only these variants")
    args = p.parse_args()
    extra = ("eval.knn_every=0", "eval.linear=true")
    variants = [v for v in VARIANTS if not args.only or v.name in args.only]
    for v in variants:  # a bad override fails here, before any run starts
        resolve(v.preset, [*v.overrides, *extra])
    failed = run_grid(cells(variants, args.seeds, Path(args.out), extra), args.jobs, args.threads)
    table = aggregate(Path(args.out))
    text = markdown(table, [v.name for v in VARIANTS], COLUMNS)
    print(text)
    Path(args.out, "table.md").write_text(text + "\n")
    Path(args.out, "table.json").write_text(json.dumps(table, indent=1) + "\n")
    print(bar_figure(table, Path(args.out, "table.png"), [v.name for v in VARIANTS], FIGURE_KEYS))
    if failed:
        raise SystemExit(f"{len(failed)} runs failed: " + ", ".join(f"{c.variant.name}/seed{c.seed}" for c in failed))


if __name__ == "__main__":
    main()
