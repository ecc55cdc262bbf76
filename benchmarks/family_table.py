"""The methods the center-vector paper unifies, on Fashion-MNIST: 9 variants x 3 seeds.

Every variant is its ``fashion-mnist/<method>`` preset (the shared ConvNet recipe, on the presets'
``24-gray-strong`` views unless ``--views`` names others) trained for
about 5 minutes on one thread with two runs side by side on this 2-core CPU: 4 epochs for the
methods without a target network, 3 for those with an EMA target/teacher (BYOL, DINO), then kNN
(k=200, T=0.1) and the linear probe on the full test set. Runs go to ``ROOT/<variant>/seed<k>``
(rerunning skips finished runs); prints and writes ``ROOT/table.md`` / ``ROOT/table.json``.

    .venv/bin/python benchmarks/family_table.py --out runs/family-table --seeds 0 1 2 --jobs 2
"""

from __future__ import annotations

from stopgrad.bench_grid import grid_parser, run_table
from stopgrad.sweep import FMNIST_BACKBONES, PRESET_FMNIST_VIEWS, Variant


def variants(views: str = PRESET_FMNIST_VIEWS, backbone: str = "plain") -> list[Variant]:
    """The nine variants, each trained on the view preset ``views`` and the ConvNet ``backbone`` (a key
    of ``FMNIST_BACKBONES``; both pinned, so a table's command reproduces it should the presets move on)."""
    pin = (FMNIST_BACKBONES[backbone], f"data.views={views}")
    e4, e3 = (*pin, "train.epochs=4"), (*pin, "train.epochs=3")
    return [
        Variant("simclr", "fashion-mnist/simclr", e4),
        Variant("barlow", "fashion-mnist/barlow", e4),
        Variant("barlow-no-offdiag", "fashion-mnist/barlow", (*e4, "method.off_diagonal=false")),
        Variant("swav", "fashion-mnist/swav", e4),
        Variant("swav-fixed-prototypes", "fashion-mnist/swav", (*e4, "method.learnable_prototypes=false")),
        Variant("dino", "fashion-mnist/dino", e3),
        Variant("dino-no-centering", "fashion-mnist/dino", (*e3, "method.centering=false")),
        Variant("simsiam", "fashion-mnist/simsiam", e4),
        Variant("byol", "fashion-mnist/byol", e3),
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
    args = grid_parser(__doc__.splitlines()[0], "runs/family-table", views=PRESET_FMNIST_VIEWS, backbone=True).parse_args()
    run_table(variants(args.views, args.backbone), args, ("eval.knn_every=0", "eval.linear=true"), COLUMNS, FIGURE_KEYS)


if __name__ == "__main__":
    main()
