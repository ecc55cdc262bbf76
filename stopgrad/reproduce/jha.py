"""Claim set ``jha-2023``: the toy claims of Jha, Blaschko, Asano & Tuytelaars, "The common
stability mechanism behind most self-supervised learning approaches" (arXiv 2402.14957).

Claims 1-2 run on the 2-D blobs and moons (Figs. 3-4), claim 3 on the 3-D Gaussian points of
App. B.1; the settings are in :mod:`stopgrad.theory.toy2d`. Every threshold below was fixed
before the first full run.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any, Callable

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from stopgrad.reproduce.base import Claim, ClaimSet, Verdict, fraction, register_claim_set  # noqa: E402
from stopgrad.reproduce.base import mean_of as _m, std_of as _sd  # noqa: E402
from stopgrad.reproduce.report import save_figure  # noqa: E402
from stopgrad.theory.toy2d import (TOY_SETS, TOY_VARIANTS, InvarianceConfig, ToyConfig,  # noqa: E402
                                   invariance_run, toy_points, train_toy)

# --- criteria, fixed before the runs ------------------------------------------------------------
COLLAPSED_CENTER = 0.9  # ‖s‖ of the normalised outputs at or above this ...
COLLAPSED_STD = 0.05  # ... and a mean per-dimension std below this: "collapsed"
HEALTHY_STD = 0.1  # not collapsed: ‖s‖ below COLLAPSED_CENTER and per-dimension std above this
MIN_FRACTION = 0.8  # of seeds (and of both toy sets) for a "does / does not collapse" claim
MATCH_MARGIN = 0.02  # "matches or beats": Simple's mean accuracy >= SimSiam's mean - 0.02

FULL = ToyConfig()
QUICK = ToyConfig(points=600, steps=400, eval_every=100)
INV_FULL = InvarianceConfig()
INV_QUICK = InvarianceConfig(epochs=60)

CLAIMS = {
    "toy-collapse": Claim(
        id="toy-collapse", source="Sec. 3.2, Fig. 4",
        statement="On blobs and moons, standard SimSiam does not collapse; SimSiam without predictor "
                  "and SimSiam without stop-gradient collapse, with a high center-vector magnitude.",
        paper_value="Fig. 4: ‖s‖ high for both ablations, low for SimSiam (5 seeds)",
        measure="fraction of (set, seed) runs behaving as claimed: SimSiam healthy (‖s‖ < 0.9 and "
                "per-dim std > 0.1), both ablations collapsed (‖s‖ >= 0.9 and std < 0.05) at the end",
        criterion=f"fraction >= {MIN_FRACTION}"),
    "simple-matches-simsiam": Claim(
        id="simple-matches-simsiam", source="Sec. 3.1, Fig. 3",
        statement="The Simple objective (eq. 32, invariance + center-vector penalty, lambda = -1) matches "
                  "or beats SimSiam's accuracy on both toy sets.",
        paper_value="Fig. 3: Simple above SimSiam on blobs and moons",
        measure="per toy set: Simple's final linear-probe accuracy minus SimSiam's (mean over seeds)",
        criterion=f"difference >= -{MATCH_MARGIN} on both sets"),
    "invariance-only-collapses": Claim(
        id="invariance-only-collapses", source="App. B.1, Fig. B.1",
        statement="With the invariance loss only, all four settings (centred or biased augmentation, "
                  "mini-batch of 50 or full batch) collapse.",
        paper_value="Fig. B.1: ‖s‖ → 1 in all four",
        measure="fraction of (setting, seed) runs with ‖s‖ >= 0.9 at the end",
        criterion=f"fraction >= {MIN_FRACTION}"),
    "minibatch-collapses-faster": Claim(
        id="minibatch-collapses-faster", source="App. B.1, Fig. B.1",
        statement="Mini-batch SGD collapses faster than full-batch SGD.",
        paper_value="Fig. B.1 (the text does not say whether its x-axis counts epochs or updates)",
        measure="fraction of (augmentation, seed) pairs in which mini-batch reaches ‖s‖ >= 0.9 in fewer "
                "EPOCHS than full batch (the per-UPDATE comparison is reported in the detail)",
        criterion=f"fraction >= {MIN_FRACTION}"),
}


def _collapsed(center: float, std: float) -> bool:
    return center >= COLLAPSED_CENTER and std < COLLAPSED_STD


def _healthy(center: float, std: float) -> bool:
    return center < COLLAPSED_CENTER and std > HEALTHY_STD


def _first_collapse(curve, axis: str) -> float | None:
    xs = getattr(curve, axis)
    return next((x for x, c in zip(xs, curve.center) if c >= COLLAPSED_CENTER), None)


def run(out: Path, seeds: int, quick: bool, log: Callable[[str], None] = print) -> tuple[list[Verdict], dict]:
    cfg, inv_cfg = (QUICK, INV_QUICK) if quick else (FULL, INV_FULL)
    toy: dict[str, dict[str, list]] = {s: {v: [] for v in TOY_VARIANTS} for s in TOY_SETS}
    timing: dict[str, float] = {}
    for set_name in TOY_SETS:
        for variant in TOY_VARIANTS:
            t0 = time.time()
            toy[set_name][variant] = [train_toy(set_name, variant, s, cfg) for s in range(seeds)]
            timing[f"{set_name}/{variant}"] = round(time.time() - t0, 1)
            log(f"jha-2023: {set_name} {variant}: {seeds} seeds in {timing[f'{set_name}/{variant}']:.0f} s")
    inv: dict[tuple[str, str], list] = {}
    for aug in ("centred", "biased"):
        for batch in ("mini", "full"):
            t0 = time.time()
            inv[(aug, batch)] = [invariance_run(aug, batch, s, inv_cfg) for s in range(seeds)]
            timing[f"B.1/{aug}/{batch}"] = round(time.time() - t0, 1)
    figs = {"toy": _toy_figure(toy, out / "toy-curves.png"), "data": _data_figure(out / "toy-data.png"),
            "inv": _inv_figure(inv, out / "invariance-b1.png")}

    # claim 1
    ok, details = [], []
    for set_name in TOY_SETS:
        for s in range(seeds):
            end = {v: (toy[set_name][v][s].center[-1], toy[set_name][v][s].dim_std[-1]) for v in TOY_VARIANTS}
            ok.append(_healthy(*end["simsiam"]) and _collapsed(*end["no-predictor"]) and _collapsed(*end["no-stopgrad"]))
    for set_name in TOY_SETS:
        parts = []
        for v in ("simsiam", "no-predictor", "no-stopgrad", "simple"):
            c = [r.center[-1] for r in toy[set_name][v]]
            sd = [r.dim_std[-1] for r in toy[set_name][v]]
            parts.append(f"{v} ‖s‖ {_m(c):.2f}±{_sd(c):.2f}, std {_m(sd):.3f}")
        details.append(f"{set_name}: " + "; ".join(parts))
    v1 = Verdict(CLAIMS["toy-collapse"], fraction(ok), holds=_m(fraction(ok)) >= MIN_FRACTION,
                 detail=" | ".join(details), figures=[figs["toy"], figs["data"]],
                 extra={"final": _toy_table(toy)})
    # claim 2
    diffs, parts = [], []
    for set_name in TOY_SETS:
        simple = [r.linear[-1] for r in toy[set_name]["simple"]]
        sims = [r.linear[-1] for r in toy[set_name]["simsiam"]]
        diffs.append(_m(simple) - _m(sims))
        ks, kt = [r.knn[-1] for r in toy[set_name]["simple"]], [r.knn[-1] for r in toy[set_name]["simsiam"]]
        parts.append(f"{set_name}: linear probe Simple {_m(simple):.3f}±{_sd(simple):.3f} vs SimSiam "
                     f"{_m(sims):.3f}±{_sd(sims):.3f}; kNN {_m(ks):.3f} vs {_m(kt):.3f}")
    v2 = Verdict(CLAIMS["simple-matches-simsiam"], diffs, holds=all(d >= -MATCH_MARGIN for d in diffs),
                 detail=" | ".join(parts), figures=[figs["toy"]])
    # claims 3 and 4
    collapsed = [r.center[-1] >= COLLAPSED_CENTER for runs in inv.values() for r in runs]
    per_setting = {f"{a}/{b}": _m([r.center[-1] for r in runs]) for (a, b), runs in inv.items()}
    v3 = Verdict(CLAIMS["invariance-only-collapses"], fraction(collapsed), holds=_m(fraction(collapsed)) >= MIN_FRACTION,
                 detail="final ‖s‖ (mean over seeds): " + ", ".join(f"{k} {v:.3f}" for k, v in per_setting.items()),
                 figures=[figs["inv"]])
    faster_epochs, faster_updates, rows = [], [], []
    for aug in ("centred", "biased"):
        for s in range(seeds):
            mini, full = inv[(aug, "mini")][s], inv[(aug, "full")][s]
            me, fe = _first_collapse(mini, "epochs"), _first_collapse(full, "epochs")
            mu, fu = _first_collapse(mini, "updates"), _first_collapse(full, "updates")
            faster_epochs.append(me is not None and (fe is None or me < fe))
            faster_updates.append(mu is not None and (fu is None or mu < fu))
            rows.append({"augmentation": aug, "seed": s, "mini_epochs": me, "full_epochs": fe,
                         "mini_updates": mu, "full_updates": fu})
    v4 = Verdict(CLAIMS["minibatch-collapses-faster"], fraction(faster_epochs),
                 holds=_m(fraction(faster_epochs)) >= MIN_FRACTION,
                 detail=(f"per epoch: mini-batch first in {_m(fraction(faster_epochs)):.2f} of runs; per update: "
                         f"in {_m(fraction(faster_updates)):.2f} of runs (a full-batch epoch is 1 update, a "
                         f"mini-batch epoch 20)"),
                 figures=[figs["inv"]], extra={"first_collapse": rows})
    settings = {"toy": cfg.__dict__, "invariance_b1": inv_cfg.__dict__, "timing_s": timing,
                "criteria": {"COLLAPSED_CENTER": COLLAPSED_CENTER, "COLLAPSED_STD": COLLAPSED_STD,
                             "HEALTHY_STD": HEALTHY_STD, "MIN_FRACTION": MIN_FRACTION,
                             "MATCH_MARGIN": MATCH_MARGIN},
                "choices": "see stopgrad/theory/toy2d.py (data, networks, optimiser, probe)"}
    return [v1, v2, v3, v4], settings


def _toy_table(toy: dict) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for set_name, variants in toy.items():
        for v, runs in variants.items():
            out[f"{set_name}/{v}"] = {k: [_m([getattr(r, k)[-1] for r in runs]), _sd([getattr(r, k)[-1] for r in runs])]
                                      for k in ("center", "dim_std", "linear", "knn")}
    return out


COLORS = {"simsiam": "#1f5fa8", "no-predictor": "#b4321f", "no-stopgrad": "#d9589f", "simple": "#2c9a4a"}


def _band(ax, xs, runs, key, color, label):
    import torch

    vals = torch.tensor([getattr(r, key) for r in runs])
    m, s = vals.mean(0), vals.std(0) if len(runs) > 1 else torch.zeros(vals.shape[1])
    ax.plot(xs, m, color=color, label=label, lw=1.8)
    ax.fill_between(xs, m - s, m + s, color=color, alpha=0.2)


def _toy_figure(toy: dict, path: Path) -> str:
    fig, axes = plt.subplots(2, 3, figsize=(14, 7.5))
    for row, set_name in enumerate(TOY_SETS):
        for col, (key, title) in enumerate((("center", "‖s‖ (center-vector magnitude)"),
                                            ("dim_std", "per-dimension std of z/‖z‖"),
                                            ("linear", "linear-probe accuracy"))):
            ax = axes[row, col]
            for v, runs in toy[set_name].items():
                _band(ax, runs[0].steps, runs, key, COLORS[v], v)
            ax.set_title(f"{set_name}: {title}", fontsize=10)
            ax.set_xlabel("step")
            ax.grid(alpha=0.3)
    axes[0, 0].legend(fontsize=8)
    fig.suptitle("Toy sets (mean ± std over seeds)", fontsize=11)
    return save_figure(fig, path)


def _data_figure(path: Path) -> str:
    import torch

    fig, axes = plt.subplots(1, 2, figsize=(8, 4))
    for ax, name in zip(axes, TOY_SETS):
        x, y = toy_points(name, 1000, torch.Generator().manual_seed(1000))
        ax.scatter(x[:, 0], x[:, 1], c=y, s=4, cmap="viridis")
        ax.set_title(f"{name} (each class = one image's augmentations)", fontsize=9)
        ax.set_aspect("equal")
    return save_figure(fig, path)


def _inv_figure(inv: dict, path: Path) -> str:
    fig, axes = plt.subplots(1, 2, figsize=(11, 4))
    colors = {("centred", "mini"): "#1f5fa8", ("centred", "full"): "#7fb2e5",
              ("biased", "mini"): "#b4321f", ("biased", "full"): "#f0a03c"}
    for (a, b), runs in inv.items():
        for ax, axis in zip(axes, ("epochs", "updates")):
            _band(ax, getattr(runs[0], axis), runs, "center", colors[(a, b)], f"{a}, {b}-batch")
    for ax, axis in zip(axes, ("epochs", "optimizer updates")):
        ax.set_xlabel(axis)
        ax.set_ylabel("‖s‖")
        ax.axhline(COLLAPSED_CENTER, color="gray", ls=":")
        ax.grid(alpha=0.3)
    axes[1].set_xscale("symlog")
    axes[0].legend(fontsize=8)
    fig.suptitle("App. B.1: invariance loss only, 3-D points onto the unit circle", fontsize=10)
    return save_figure(fig, path)


register_claim_set(ClaimSet(
    name="jha-2023", paper="Jha, Blaschko, Asano & Tuytelaars, The common stability mechanism behind most "
                           "SSL approaches (arXiv 2402.14957)",
    description="toy claims: SimSiam ablations and the Simple objective on 2-D blobs/moons; invariance-only "
                "collapse of 3-D points (App. B.1)",
    run=run, default_seeds=5, quick_seeds=2))
