"""The predictor-family table on Fashion-MNIST: 8 heads x 3 seeds, BYOL-style (EMA target).

Every variant is ``fashion-mnist/byol`` (ConvNet, ``heads=small``, normalised MSE, EMA momentum
0.99 -> 1 cosine, the presets' ``24-gray-strong`` views unless ``--views`` names others) with only
``method.predictor`` changed, trained for the same budget of
``--epochs`` (3 epochs = 702 steps of 256, about 5 minutes per run on one thread with two runs
side by side on this 2-core CPU), then evaluated by kNN (k=200, T=0.1) and the linear probe on the
full test set. Runs go to ``ROOT/<variant>/seed<k>``; rerunning skips finished runs and resumes
killed ones. Prints (and writes ``ROOT/table.md`` and ``ROOT/table.json``) mean ± std over seeds.

    .venv/bin/python benchmarks/predictor_table.py --out runs/predictor-table --seeds 0 1 2 --jobs 2
"""

from __future__ import annotations

from stopgrad.bench_grid import grid_parser, run_table
from stopgrad.sweep import FMNIST_BACKBONES, PRESET_FMNIST_VIEWS, Variant

BASE = "fashion-mnist/byol"
TRACK = "method.track_correlation=true"  # log eigen-alignment of learned linear heads with F
HEADS = [
    ("byol-mlp", ()),
    ("byol-linear", ("method.predictor=linear", TRACK)),
    ("directpred", ("method.predictor=directpred",)),
    ("directcopy", ("method.predictor=directcopy",)),
    ("identity-init", ("method.predictor=identity", TRACK)),
    ("fixed-diagonal", ("method.predictor=fixed-diagonal", TRACK)),
    ("frozen-identity", ("method.predictor=frozen-identity",)),
    ("no-predictor", ("method.predictor=none",)),
]


def variants(views: str = PRESET_FMNIST_VIEWS, backbone: str = "plain") -> list[Variant]:
    """The eight heads, each trained on the view preset ``views`` and the ConvNet ``backbone`` (a key
    of ``FMNIST_BACKBONES``; both pinned, so a table's command reproduces it should the presets move on)."""
    pin = (FMNIST_BACKBONES[backbone], f"data.views={views}")
    return [Variant(name, BASE, (*pin, *overrides)) for name, overrides in HEADS]


def main() -> None:
    p = grid_parser(__doc__.splitlines()[0], "runs/predictor-table", views=PRESET_FMNIST_VIEWS, backbone=True)
    p.add_argument("--epochs", type=float, default=3.0)
    args = p.parse_args()
    run_table(variants(args.views, args.backbone), args, (f"train.epochs={args.epochs}", "eval.knn_every=0", "eval.linear=true"))


if __name__ == "__main__":
    main()
