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

from stopgrad.sweep import STRONG_FMNIST_VIEWS, Variant, grid_parser, run_table

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
    p = grid_parser(__doc__.splitlines()[0], "runs/predictor-table")
    p.add_argument("--epochs", type=float, default=3.0)
    args = p.parse_args()
    run_table(VARIANTS, args, (f"train.epochs={args.epochs}", "eval.knn_every=0", "eval.linear=true"))


if __name__ == "__main__":
    main()
