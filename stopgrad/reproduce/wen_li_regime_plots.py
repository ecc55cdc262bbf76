"""Figures of the Wen & Li regime study: phase diagrams, 1-D scans, the mechanism, phase timing."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Sequence

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from stopgrad.reproduce.report import save_figure  # noqa: E402

if TYPE_CHECKING:
    from stopgrad.reproduce.wen_li_regime import Panel, PointResult
    from stopgrad.theory.wen_li_grid import GridTrajectory


def _grid(results: Sequence["PointResult"], panel: "Panel", key: str) -> np.ndarray:
    (xa, xs), (ya, ys) = list(panel.axes.items())[:2]
    M = np.full((len(ys), len(xs)), np.nan)
    for r in results:
        if r.panel == panel.name:
            M[ys.index(r.point[ya]), xs.index(r.point[xa])] = getattr(r, key)
    return M


def phase_diagrams(results: Sequence["PointResult"], panels: Sequence["Panel"], path: Path) -> str:
    """Per 2-D panel: one neuron per feature with the trained head, the same with the fixed head,
    and the fixed head's collapse; cells of the region (claim a) outlined, the reference point starred."""
    two_d = [p for p in panels if sum(len(v) > 1 for v in p.axes.values()) == 2]
    keys = [("trained_one_each", "trained head: one neuron per feature"),
            ("fixed_one_each", "fixed head E = I: one neuron per feature"),
            ("fixed_all_v1", "fixed head E = I: every neuron on v1")]
    fig, axes = plt.subplots(len(two_d), 3, figsize=(14, 4.2 * len(two_d)), squeeze=False)
    for row, panel in zip(axes, two_d):
        (xa, xs), (ya, ys) = [(a, v) for a, v in panel.axes.items() if len(v) > 1][:2]
        for ax, (key, title) in zip(row, keys):
            M = _grid(results, panel, key)
            ax.imshow(M, origin="lower", vmin=0, vmax=1, cmap="viridis", aspect="auto")
            for i in range(len(ys)):
                for j in range(len(xs)):
                    if not np.isnan(M[i, j]):
                        ax.text(j, i, f"{M[i, j]:.1f}", ha="center", va="center", fontsize=7,
                                color="white" if M[i, j] < 0.6 else "black")
            for r in results:
                if r.panel == panel.name and r.in_region:
                    j, i = xs.index(r.point[xa]), ys.index(r.point[ya])
                    ax.add_patch(plt.Rectangle((j - 0.5, i - 0.5), 1, 1, fill=False, ec="red", lw=2))
            if xa in panel.center and ya in panel.center and panel.center[xa] in xs and panel.center[ya] in ys:
                ax.plot(xs.index(panel.center[xa]), ys.index(panel.center[ya]), marker="*", ms=16,
                        mfc="none", mec="white", mew=1.5)
            ax.set_xticks(range(len(xs)), [f"{v:g}" for v in xs])
            ax.set_yticks(range(len(ys)), [f"{v:g}" for v in ys])
            ax.set_xlabel(xa)
            ax.set_ylabel(ya)
            ax.set_title(f"{panel.name}: {title}", fontsize=9)
    fig.suptitle("Fraction of seeds (numbers; yellow = 1). Red: the region of claim (a), trained head one neuron per "
                 "feature in >= 0.8 of seeds while the fixed head collapses in >= 0.8; star: the study base", fontsize=10)
    return save_figure(fig, path, dpi=100)


def scans(results: Sequence["PointResult"], panels: Sequence["Panel"], path: Path) -> str:
    """1-D panels: the three fractions against the panel's axis."""
    one_d = [p for p in panels if sum(len(v) > 1 for v in p.axes.values()) == 1]
    if not one_d:
        return ""
    fig, axes = plt.subplots(1, len(one_d), figsize=(3.6 * len(one_d), 3.4), squeeze=False, sharey=True)
    for ax, panel in zip(axes[0], one_d):
        axis, vals = next((a, v) for a, v in panel.axes.items() if len(v) > 1)
        rs = sorted((r for r in results if r.panel == panel.name), key=lambda r: r.point[axis])
        x = [r.point[axis] for r in rs]
        ax.plot(x, [r.trained_one_each for r in rs], "o-", c="#b4321f", label="trained: one per feature")
        ax.plot(x, [r.fixed_one_each for r in rs], "s--", c="#1f5fa8", label="fixed: one per feature")
        ax.plot(x, [r.fixed_all_v1 for r in rs], "^:", c="#555555", label="fixed: all on v1")
        ax.set_xscale("log")
        ax.set_xticks(x, [f"{v:g}" for v in x])
        ax.axhline(0.8, c="gray", lw=0.8, ls=":")
        ax.set_xlabel(axis)
        ax.set_ylim(-0.03, 1.03)
        ax.grid(alpha=0.3)
        if axis in panel.center:
            ax.axvline(panel.center[axis], c="gray", lw=0.8)
    axes[0][0].set_ylabel("fraction of seeds")
    axes[0][0].legend(fontsize=7)
    fig.suptitle("One parameter at a time around the study base (vertical line)", fontsize=10)
    return save_figure(fig, path, dpi=100)


def mechanism(gt: "GridTrajectory", g: int, res: "PointResult", path: Path) -> str:
    """At one region point: alignments (trained vs fixed), the head's entries with t1..t4, the
    (v1, v2) phase plane of neuron b, and the per-seed acceleration ratios."""
    steps = gt.steps.numpy()
    S = gt.align.shape[2]
    fig, ax = plt.subplots(1, 4, figsize=(19, 4))
    for s in range(S):
        ph = res.phases[s]
        a = ph.get("a")
        if a is None:
            continue
        b = ph["b"]
        for h, ls in ((0, "-"), (1, "--")):
            ax[0].plot(steps, gt.align[:, g, s, h, b, 1].numpy(), ls, c="#f0a03c" if h == 0 else "#7f7f7f",
                       lw=0.8, alpha=0.6)
            ax[0].plot(steps, gt.align[:, g, s, h, b, 0].numpy(), ls, c="#b4321f" if h == 0 else "#1f5fa8",
                       lw=0.8, alpha=0.6)
            ax[2].plot(gt.align[:, g, s, h, b, 0].numpy(), gt.align[:, g, s, h, b, 1].numpy(), ls,
                       c="#b4321f" if h == 0 else "#1f5fa8", lw=0.8, alpha=0.7)
        ax[1].plot(steps, gt.head[:, g, s, 0, b, a].abs().clamp_min(1e-4).numpy(), c="#b4321f", lw=0.8, alpha=0.6)
        ax[1].plot(steps, gt.head[:, g, s, 0, a, b].abs().clamp_min(1e-4).numpy(), c="#1f5fa8", lw=0.8, alpha=0.6)
    for k, c in (("t1", "#444"), ("t2", "#b4321f"), ("t3", "#f0a03c"), ("t4", "#2a8a3a")):
        ts = [p[k] for p in res.phases if p.get(k) is not None]
        if ts:
            ax[1].axvline(float(np.median(ts)), c=c, ls=":", lw=1.5, label=f"median {k} = {np.median(ts):.0f}")
    ax[0].set_title("neuron b: v1 (red/blue) and v2 (orange/gray);\nsolid trained head, dashed fixed head", fontsize=9)
    ax[0].set_xlabel("SGD step")
    ax[0].set_ylabel("|cos(w_b, v_l)|")
    ax[1].set_title("|E[b, a]| (red: a's v1 fed into b) and |E[a, b]| (blue)", fontsize=9)
    ax[1].set_xlabel("SGD step")
    ax[1].set_yscale("log")
    ax[1].legend(fontsize=7)
    ax[2].set_title("neuron b's path: |cos v1| → |cos v2|\n(red trained, blue fixed; same start)", fontsize=9)
    ax[2].set_xlabel("|cos(w_b, v1)|")
    ax[2].set_ylabel("|cos(w_b, v2)|")
    pairs = [(a["fixed"], a["trained"]) for a in res.accel if a.get("trained") is not None]
    if pairs:
        fx, tr = zip(*pairs)
        ax[3].scatter(fx, tr, c="#b4321f", s=25)
        lo, hi = min(min(fx), min(tr), 0.0), max(max(fx), max(tr), 1e-3)
        ax[3].plot([lo, hi], [lo, hi], c="k", lw=0.8)
    ax[3].set_title(f"neuron b's v2 growth rate (|cos| per 1,000 steps), matched on |cos(w_b, v1)|;\n"
                    f"one dot per seed with common bins ({len(pairs)} of {len(res.accel)}); above the line: faster "
                    f"with the trained head", fontsize=8)
    ax[3].set_xlabel("fixed head E = I")
    ax[3].set_ylabel("trained head")
    for a_ in ax:
        a_.grid(alpha=0.3)
    fig.suptitle("Mechanism at " + ", ".join(f"{k} = {v:g}" for k, v in res.point.items()), fontsize=10)
    return save_figure(fig, path, dpi=100)


def timing(results: Sequence["PointResult"], panels: Sequence["Panel"], path: Path) -> str:
    """Per 2-D panel: the median t3 (neuron b detects v2, trained head) against the first axis,
    one line per value of the second; marker area = share of seeds in which t3 was found."""
    two_d = [p for p in panels if sum(len(v) > 1 for v in p.axes.values()) == 2]
    if not two_d:
        return ""
    fig, axes = plt.subplots(1, len(two_d), figsize=(5 * len(two_d), 3.8), squeeze=False)
    cmap = plt.get_cmap("viridis")
    for ax, panel in zip(axes[0], two_d):
        (xa, xs), (ya, ys) = [(a, v) for a, v in panel.axes.items() if len(v) > 1][:2]
        for k, yv in enumerate(ys):
            pts = []
            for r in results:
                if r.panel == panel.name and r.point.get(ya) == yv:
                    ts = [p["t3"] for p in r.phases if p.get("t3") is not None]
                    if ts:
                        pts.append((r.point[xa], float(np.median(ts)), len(ts) / len(r.phases)))
            if pts:
                pts.sort()
                x, t, share = zip(*pts)
                c = cmap(k / max(len(ys) - 1, 1))
                ax.plot(x, t, "-", c=c, lw=1, label=f"{ya} {yv:g}")
                ax.scatter(x, t, s=[10 + 80 * v for v in share], color=c)
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xticks(list(xs), [f"{v:g}" for v in xs])
        ax.set_xlabel(xa)
        ax.set_ylabel("median t3 (steps)")
        ax.set_title(panel.name, fontsize=9)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=6)
    fig.suptitle("When neuron b learns v2 with the trained head (t3); marker area: share of seeds where it does",
                 fontsize=10)
    return save_figure(fig, path, dpi=100)
