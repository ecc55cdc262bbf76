"""Claim set ``jha-2023-fmnist``: the real-image claims of Jha et al. (arXiv 2402.14957) on
Fashion-MNIST, as grids of ordinary training runs (:mod:`stopgrad.sweep`).

- App. B.4 / Fig. B.6: SimSiam's predictor learning rate at 1%, 10%, 100% of the base rate
  (``method.pred_lr_mult``): 1% collapses, accuracy rises with the rate.
- Sec. 3.5 / Fig. 7: BYOL's EMA momentum, held constant at 0.9, 0.99, 0.996
  (``method.ema=[m, m]``): lower momentum, larger center vector and lower kNN.

Budget: about 7 minutes of training per run on this 2-core CPU (391-423 s with the 24x24 views,
474-524 s with the strong 28x28 ones), two runs side by side on one thread each: SimSiam 4 epochs
(936 steps of 256), BYOL 3 epochs (702 steps), the ``fashion-mnist/simsiam`` and
``fashion-mnist/byol`` recipes otherwise. The center vector is measured on the L2-normalised
projector output *before* its output BN (``diag/center_norm_pre_bn``), i.e. on a BYOL-style
projector without output BN; Jha et al. argue
that BN by itself removes the center (Sec. 3.4). Barlow Twins without its off-diagonal term
(Fig. 5) is a row of the method-family table (``benchmarks/family_table.py``,
``barlow-no-offdiag``), not a claim of this set.
``--quick`` runs every cell for 2 steps on the synthetic dataset: it checks the machinery and the
file formats, and its verdicts mean nothing.
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from stopgrad.reproduce.base import Claim, ClaimSet, Verdict, fraction, register_claim_set  # noqa: E402
from stopgrad.reproduce.report import save_figure  # noqa: E402
from stopgrad.sweep import FMNIST_BACKBONES, PRESET_FMNIST_VIEWS, Variant, collect, run_variants  # noqa: E402

# --- criteria, fixed before the runs ------------------------------------------------------------
COLLAPSE_FRACTION = 0.5  # "1% collapses": the collapse alarm fires in at least half of the seeds

PRED_LR = {"simsiam-predlr-1pct": 0.01, "simsiam-predlr-10pct": 0.1, "simsiam-predlr-100pct": 1.0}
EMA = {"byol-ema-0.9": 0.9, "byol-ema-0.99": 0.99, "byol-ema-0.996": 0.996}
SIMSIAM_EPOCHS, BYOL_EPOCHS = 4, 3
QUICK_EXTRA = ("data.dataset=synthetic", "data.batch_size=32", "model.width=0.25", "train.steps=2",
               "train.ckpt_every=1000", "eval.knn_k=5", "eval.linear=false", "train.diag_every=1")


def variants(quick: bool, views: str = PRESET_FMNIST_VIEWS, backbone: str = "plain") -> list[Variant]:
    """The six cells, each trained on the view preset ``views`` and the ConvNet ``backbone`` (a key of
    ``FMNIST_BACKBONES``; both pinned, so the command keeps reproducing its numbers should the presets
    move on)."""
    vs = [Variant(n, "fashion-mnist/simsiam", (f"method.pred_lr_mult={m}", f"train.epochs={SIMSIAM_EPOCHS}"))
          for n, m in PRED_LR.items()]
    vs += [Variant(n, "fashion-mnist/byol", (f"method.ema=[{m},{m}]", f"train.epochs={BYOL_EPOCHS}"))
           for n, m in EMA.items()]
    common = (f"data.views={views}", "eval.knn_every=0", "eval.linear=true") + (QUICK_EXTRA if quick else ())
    return [Variant(v.name, v.preset, (FMNIST_BACKBONES[backbone], *v.overrides, *common)) for v in vs]


CLAIMS = {
    "predlr-1pct-collapses": Claim(
        id="predlr-1pct-collapses", source="App. B.4, Fig. B.6",
        statement="SimSiam with its predictor learning rate at 1% of the base rate collapses.",
        paper_value="Fig. B.6 (ImageNet-100): collapse at 1%",
        measure="per seed at 1%: stopgrad's collapse alarm fired (complete or dimensional collapse: "
                "‖s‖ > 0.3 with effective rank < 0.1·d, or effective rank < min(0.02·d, 5), "
                "for 3 checks in a row)",
        criterion=f"fraction of seeds >= {COLLAPSE_FRACTION}"),
    "predlr-accuracy-rises": Claim(
        id="predlr-accuracy-rises", source="App. B.4, Fig. B.6",
        statement="SimSiam's kNN accuracy rises with the predictor learning rate (1% < 10% < 100%).",
        paper_value="Fig. B.6: accuracy increases from 1% to 100%",
        measure="mean kNN top-1 at 10% minus at 1%, and at 100% minus at 10%",
        criterion="both differences > 0"),
    "ema-center-grows": Claim(
        id="ema-center-grows", source="Sec. 3.5, Fig. 7",
        statement="Lower BYOL momentum gives a larger center vector.",
        paper_value="Fig. 7 (ImageNet-100)",
        measure="mean ‖s‖ (projector output before its BN) at 0.9 minus at 0.99, and at 0.99 minus at 0.996",
        criterion="both differences > 0"),
    "ema-knn-drops": Claim(
        id="ema-knn-drops", source="Sec. 3.5, Fig. 7",
        statement="Lower BYOL momentum gives lower kNN accuracy.",
        paper_value="Fig. 7 (ImageNet-100)",
        measure="mean kNN top-1 at 0.99 minus at 0.9, and at 0.996 minus at 0.99",
        criterion="both differences > 0"),
}


def run(out: Path, seeds: int, quick: bool, log: Callable[[str], None] = print,
        views: str = PRESET_FMNIST_VIEWS, backbone: str = "plain") -> tuple[list[Verdict], dict]:
    root = out / "runs"
    vs = variants(quick, views, backbone)
    table = run_variants(vs, range(seeds), root, jobs=2, threads=1, log=log)
    per_seed = {v.name: [collect(root / v.name / f"seed{s}") for s in range(seeds)] for v in vs}

    def mean(name: str, key: str) -> float:
        return table[name][key][0] if key in table[name] else float("nan")

    lr_names, ema_names = list(PRED_LR), list(EMA)
    knn_lr = [mean(n, "knn_top1") for n in lr_names]
    knn_ema = [mean(n, "knn_top1") for n in ema_names]
    s_ema = [mean(n, "diag/center_norm_pre_bn") for n in ema_names]
    alarms = [bool(r.get("collapse_alarm")) for r in per_seed[lr_names[0]]]
    fig = _figure(table, lr_names, ema_names, out / "jha-fmnist.png")

    def fmt(names, key, digits=4):
        return ", ".join(f"{n}: {table[n][key][0]:.{digits}f}±{table[n][key][1]:.{digits}f}" for n in names if key in table[n])

    d_lr = [knn_lr[1] - knn_lr[0], knn_lr[2] - knn_lr[1]]
    d_s = [s_ema[0] - s_ema[1], s_ema[1] - s_ema[2]]
    d_knn = [knn_ema[1] - knn_ema[0], knn_ema[2] - knn_ema[1]]
    verdicts = [
        Verdict(CLAIMS["predlr-1pct-collapses"], fraction(alarms), holds=sum(alarms) / len(alarms) >= COLLAPSE_FRACTION,
                detail="effective rank (projector): " + fmt(lr_names, "diag/effective_rank", 1)
                       + "; ‖s‖ pre-BN: " + fmt(lr_names, "diag/center_norm_pre_bn", 3), figures=[fig]),
        Verdict(CLAIMS["predlr-accuracy-rises"], d_lr, holds=all(d > 0 for d in d_lr),
                detail="kNN: " + fmt(lr_names, "knn_top1") + "; linear: " + fmt(lr_names, "linear_top1"), figures=[fig]),
        Verdict(CLAIMS["ema-center-grows"], d_s, holds=all(d > 0 for d in d_s),
                detail="‖s‖ pre-BN: " + fmt(ema_names, "diag/center_norm_pre_bn", 3)
                       + "; after BN: " + fmt(ema_names, "diag/center_norm", 3), figures=[fig]),
        Verdict(CLAIMS["ema-knn-drops"], d_knn, holds=all(d > 0 for d in d_knn),
                detail="kNN: " + fmt(ema_names, "knn_top1") + "; linear: " + fmt(ema_names, "linear_top1"), figures=[fig]),
    ]
    settings = {"variants": {v.name: [v.preset, *v.overrides] for v in vs}, "seeds": seeds,
                "budget": f"SimSiam {SIMSIAM_EPOCHS} epochs, BYOL {BYOL_EPOCHS} epochs, 1 thread, 2 runs side by side",
                "wall_s": {n: table[n]["wall_s"][0] for n in table if "wall_s" in table[n]},
                "runs": str(root), "table": table}
    return verdicts, settings


def _figure(table: dict, lr_names: list[str], ema_names: list[str], path: Path) -> str:
    fig, axes = plt.subplots(1, 3, figsize=(14, 4))
    x_lr = [PRED_LR[n] * 100 for n in lr_names]
    x_ema = [EMA[n] for n in ema_names]
    for ax, names, xs, key, title, xlabel in (
            (axes[0], lr_names, x_lr, "knn_top1", "SimSiam: kNN vs predictor lr", "predictor lr (% of base)"),
            (axes[1], lr_names, x_lr, "diag/effective_rank", "SimSiam: effective rank vs predictor lr",
             "predictor lr (% of base)"),
            (axes[2], ema_names, x_ema, "diag/center_norm_pre_bn", "BYOL: ‖s‖ (pre-BN) vs EMA momentum", "momentum")):
        m = [table[n][key][0] if key in table[n] else float("nan") for n in names]
        s = [table[n][key][1] if key in table[n] else 0.0 for n in names]
        ax.errorbar(range(len(xs)), m, yerr=s, marker="o", capsize=4)
        ax.set_xticks(range(len(xs)), [f"{x:g}" for x in xs])
        ax.set_title(title, fontsize=10)
        ax.set_xlabel(xlabel)
        ax.grid(alpha=0.3)
    ax2 = axes[2].twinx()
    m = [table[n]["knn_top1"][0] for n in ema_names]
    s = [table[n]["knn_top1"][1] for n in ema_names]  # the seeds' spread: a small axis must not hide it
    ax2.errorbar([i + 0.05 for i in range(len(ema_names))], m, yerr=s, color="#b4321f", marker="s", capsize=4,
                 label="kNN top-1")
    ax2.set_ylabel("kNN top-1", color="#b4321f")
    return save_figure(fig, path)


register_claim_set(ClaimSet(
    name="jha-2023-fmnist", paper="Jha, Blaschko, Asano & Tuytelaars (arXiv 2402.14957), real-image claims",
    description="Fashion-MNIST: SimSiam predictor learning rate 1/10/100%, BYOL EMA momentum 0.9/0.99/0.996 "
                "(about 7 min of training per run; 2 runs side by side)",
    run=run, default_seeds=3, quick_seeds=1, views=PRESET_FMNIST_VIEWS, backbone="plain"))
