"""Choosing the Fashion-MNIST recipe without the test set: candidate recipes on a held-out split.

Every variant trains with ``data.holdout=10000`` (the last 10,000 training images are never trained
on and are the evaluation split: the kNN bank is the other 50,000) for the same number of epochs,
so the comparison is one of recipes at an equal amount of work; the train wall time and images/s
of each are reported beside it. ``--linear`` adds the validated linear probe (about 3 minutes a
run). The test set is used once, for the chosen recipes, by the presets' own runs.

    .venv/bin/python benchmarks/fmnist_recipes.py --round 1 --out runs/recipes --epochs 4 --jobs 2
    .venv/bin/python benchmarks/fmnist_recipes.py --round 1 --out runs/recipes --only base crop-0.5 --seeds 0 1
    .venv/bin/python benchmarks/fmnist_recipes.py --round 3 --out runs/recipes-round3 --epochs 4 --jobs 2

Writes ``ROOT/table.md`` and ``ROOT/table.json`` (mean ± std over seeds) and prints the table.
"""

from __future__ import annotations

from stopgrad.bench_grid import grid_parser, run_table
from stopgrad.sweep import PLAIN_FMNIST_BACKBONE, PUBLISHED_FMNIST_VIEWS, STRONG_FMNIST_VIEWS, Variant

SIMSIAM, BYOL = "fashion-mnist/simsiam", "fashion-mnist/byol"
VIEWS = PUBLISHED_FMNIST_VIEWS


def views(**fields: object) -> str:
    return "data.view_overrides={" + ", ".join(f"{k}: {v}" for k, v in fields.items()) + "}"


VARIANTS = [
    Variant("base", SIMSIAM),
    Variant("crop-0.5", SIMSIAM, (views(crop_scale=[0.5, 1.0]),)),
    Variant("crop-0.14", SIMSIAM, (views(crop_scale=[0.14, 1.0]),)),
    Variant("jitter-0.8", SIMSIAM, (views(brightness=0.8, contrast=0.8),)),
    Variant("blur-0.5", SIMSIAM, (views(blur_p=0.5, blur_sigma=[0.1, 1.0]),)),
    Variant("lr-0.12", SIMSIAM, ("optim.lr=0.12",)),
    Variant("lr-0.03", SIMSIAM, ("optim.lr=0.03",)),
    Variant("batch-128", SIMSIAM, ("data.batch_size=128",)),
    Variant("wd-1e-4", SIMSIAM, ("optim.weight_decay=1e-4",)),
    Variant("width-1.5", SIMSIAM, ("model.width=1.5",)),
    Variant("pool-2", SIMSIAM, ("model.options={pool: 2}",)),
    Variant("pool-4", SIMSIAM, ("model.options={pool: 4}",)),
    Variant("proj-2048-512", SIMSIAM, ("method.proj_hidden=2048", "method.proj_dim=512")),
    Variant("byol-base", BYOL),
    # round 2: the leaders of round 1 together
    Variant("jitter-blur", SIMSIAM, (views(brightness=0.8, contrast=0.8, blur_p=0.5, blur_sigma=[0.1, 1.0]),)),
    Variant("jitter-blur-crop", SIMSIAM, (views(brightness=0.8, contrast=0.8, blur_p=0.5, blur_sigma=[0.1, 1.0],
                                                crop_scale=[0.5, 1.0]),)),
]
VARIANTS = [Variant(v.name, v.preset, (PLAIN_FMNIST_BACKBONE, VIEWS, *v.overrides)) for v in VARIANTS]
# round 3 (2026-12-06): from the strong views (28-gray-strong, the presets' since round 2), the ideas
# the first rounds left: multi-crop, view size (a smaller view is a faster step), wider networks,
# erasing, solarisation, the ConvNet's pool-first order, SimSiam's fixed predictor lr, BYOL
ROUND3 = [
    Variant("strong", SIMSIAM),
    Variant("strong-multicrop-4x14", SIMSIAM, ("data.local_views=4",
                                               "data.local_overrides={size: 14, crop_scale: [0.1, 0.4]}")),
    Variant("strong-width-2", SIMSIAM, ("model.width=2.0",)),
    Variant("strong-fixed-pred-lr", SIMSIAM, ("method.fixed_pred_lr=true",)),
    Variant("strong-size-24", SIMSIAM, (views(size=24),)),
    Variant("strong-size-20", SIMSIAM, (views(size=20),)),
    Variant("strong-size-24-width-1.5", SIMSIAM, (views(size=24), "model.width=1.5")),
    Variant("strong-size-24-erase-0.5", SIMSIAM, (views(size=24, erase_p=0.5),)),
    Variant("strong-size-24-pool-first", SIMSIAM, (views(size=24), "model.options={pool: 3, pool_first: true}")),
    Variant("strong-size-24-solarize-0.2", SIMSIAM, (views(size=24, solarize_p=0.2),)),
    Variant("byol-strong", BYOL),
    Variant("byol-strong-size-24", BYOL, (views(size=24),)),
]
ROUND3 = [Variant(v.name, v.preset, (PLAIN_FMNIST_BACKBONE, STRONG_FMNIST_VIEWS, *v.overrides)) for v in ROUND3]
COLS = (("knn_top1", "kNN top-1 (held out)", 4, True), ("linear_top1", "linear top-1 (held out)", 4, True),
        ("diag/effective_rank", "eff. rank (projector)", 0, False),
        ("diag/feat_effective_rank", "eff. rank (backbone)", 0, False),
        ("images_per_s", "images/s", 0, False), ("wall_s", "train wall (s)", 0, False))


def main() -> None:
    p = grid_parser(__doc__.splitlines()[0], "runs/recipes", seeds=(0,))
    p.add_argument("--epochs", type=float, default=4.0)
    p.add_argument("--holdout", type=int, default=10000)
    p.add_argument("--linear", action="store_true", help="also run the validated linear probe (~3 min a run)")
    p.add_argument("--round", type=int, choices=(1, 3), default=1,
                   help="1: rounds 1-2 (from the 28-gray views, as published); 3: round 3 (from 28-gray-strong)")
    p.add_argument("--extra", nargs="*", default=[], help="overrides added to every variant")
    args = p.parse_args()
    extra = (f"train.epochs={args.epochs}", f"data.holdout={args.holdout}", "eval.knn_every=0",
             f"eval.linear={'true' if args.linear else 'false'}", *args.extra)
    run_table(VARIANTS if args.round == 1 else ROUND3, args, extra, COLS, figure_keys=None)


if __name__ == "__main__":
    main()
