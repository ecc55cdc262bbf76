"""Figures of the ``wen-li-2022`` claim set: alignment, off-diagonal trajectory, phases."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import torch  # noqa: E402

from stopgrad.reproduce.report import save_figure  # noqa: E402

if TYPE_CHECKING:
    from stopgrad.reproduce.wen_li import SeedOutcome
    from stopgrad.theory.wen_li import Trajectory

COLORS = {"a1": "#1f5fa8", "a2": "#7fb2e5", "b1": "#b4321f", "b2": "#f0a03c"}


def _roles(tr: "Trajectory") -> torch.Tensor:
    """Per seed, the index of neuron ``a``: the one most aligned with v1 at the end."""
    return tr.align[-1, :, :, 0].argmax(-1)


def _panel(ax, tr: "Trajectory", title: str) -> None:
    steps = tr.steps.numpy()
    a = _roles(tr)
    S = tr.align.shape[1]
    for s in range(S):
        ia, ib = int(a[s]), 1 - int(a[s]) if tr.align.shape[2] == 2 else int(a[s])
        for (j, l, key) in ((ia, 0, "a1"), (ia, 1, "a2"), (ib, 0, "b1"), (ib, 1, "b2")):
            ax.plot(steps, tr.align[:, s, j, l].numpy(), color=COLORS[key], alpha=0.25, lw=0.8)
    idx = torch.arange(S)
    for (role, l, key, label) in (("a", 0, "a1", "neuron a · v1"), ("a", 1, "a2", "neuron a · v2"),
                                  ("b", 0, "b1", "neuron b · v1"), ("b", 1, "b2", "neuron b · v2")):
        j = a if role == "a" else 1 - a
        med = tr.align[:, idx, j, l].median(dim=1).values
        ax.plot(steps, med.numpy(), color=COLORS[key], lw=2.2, label=label)
    ax.axhline(0.5, color="gray", ls=":", lw=1)
    ax.set_title(title, fontsize=10)
    ax.set_xlabel("SGD step")
    ax.set_ylabel("|cos(w_j, v_l)|")
    ax.set_ylim(0, 1.02)
    ax.grid(alpha=0.3)


def alignment_figure(results: dict[str, "Trajectory"], path: Path) -> str:
    from stopgrad.reproduce.wen_li import HEAD_LABELS

    heads = [h for h in HEAD_LABELS if h in results]
    fig, axes = plt.subplots(1, len(heads), figsize=(5.2 * len(heads), 4), sharey=True)
    for ax, h in zip(axes, heads):
        _panel(ax, results[h], HEAD_LABELS[h])
    axes[0].legend(fontsize=8, loc="center right")
    fig.suptitle("Neuron–feature alignment (thin: seeds, thick: median); a = the neuron most aligned with v1",
                 fontsize=10)
    return save_figure(fig, path, dpi=110)


def offdiag_figure(tr: "Trajectory", path: Path) -> str:
    steps = tr.steps.numpy()
    a = _roles(tr)
    fig, axes = plt.subplots(1, 2, figsize=(10.5, 4))
    S = tr.head.shape[1]
    for s in range(S):
        ia, ib = int(a[s]), 1 - int(a[s])
        axes[0].plot(steps, tr.head[:, s, ib, ia].abs().numpy(), color=COLORS["b1"], alpha=0.35, lw=0.9)
        axes[0].plot(steps, tr.head[:, s, ia, ib].abs().numpy(), color=COLORS["a2"], alpha=0.35, lw=0.9)
        axes[1].plot(steps, tr.offdiag()[:, s].numpy(), color="#444", alpha=0.35, lw=0.9)
    axes[1].plot(steps, tr.offdiag().median(1).values.numpy(), color="black", lw=2.2, label="median")
    axes[0].plot([], [], color=COLORS["b1"], label="|E[b, a]| (a's output into b)")
    axes[0].plot([], [], color=COLORS["a2"], label="|E[a, b]|")
    axes[0].legend(fontsize=8)
    axes[1].legend(fontsize=8)
    for ax, t in zip(axes, ("off-diagonal entries of the trained head", "||E − diag E||_F")):
        ax.set_title(t, fontsize=10)
        ax.set_xlabel("SGD step")
        ax.grid(alpha=0.3)
    return save_figure(fig, path, dpi=110)


def phases_figure(tr: "Trajectory", outcome: "SeedOutcome", path: Path) -> str:
    """One seed (the first whose four phases are in order, else seed 0) with the boundaries drawn."""
    ph = outcome.phases
    s = next((i for i, p in enumerate(ph) if p["ordered"]), 0)
    p = ph[s]
    steps = tr.steps.numpy()
    a = p["a"] if p["a"] is not None else int(_roles(tr)[s])
    b = p["b"] if p["b"] is not None else 1 - a
    fig, ax = plt.subplots(figsize=(8.5, 4.2))
    ax.plot(steps, tr.align[:, s, a, 0].numpy(), color=COLORS["a1"], lw=2, label="neuron a · v1")
    ax.plot(steps, tr.align[:, s, b, 0].numpy(), color=COLORS["b1"], lw=2, label="neuron b · v1")
    ax.plot(steps, tr.align[:, s, b, 1].numpy(), color=COLORS["b2"], lw=2, label="neuron b · v2")
    ax.set_ylabel("|cos(w_j, v_l)|")
    ax.set_xlabel("SGD step")
    ax.set_ylim(0, 1.02)
    ax2 = ax.twinx()
    ax2.plot(steps, tr.head[:, s, b, a].abs().numpy(), color="black", ls="--", lw=1.6, label="|E[b, a]|")
    ax2.set_ylabel("|E[b, a]|")
    bounds = [p[k] for k in ("t1", "t2", "t3", "t4")]
    edges = [0] + [t for t in bounds if t is not None]
    shades = ["#e8f0fa", "#fbeee6", "#eaf6ea", "#f3eefa"]
    names = ["I: v1", "II: substitution", "III: acceleration", "IV: end"]
    for i, t in enumerate(bounds):
        if t is not None:
            ax.axvline(t, color="gray", lw=1)
    for i in range(len(edges)):
        hi = edges[i + 1] if i + 1 < len(edges) else steps[-1]
        if i < 4 and hi > edges[i]:
            ax.axvspan(edges[i], hi, color=shades[i], zorder=0)
            ax.text((edges[i] + hi) / 2, 1.0, names[i], ha="center", va="top", fontsize=8)
    lines = ax.get_legend_handles_labels()
    lines2 = ax2.get_legend_handles_labels()
    ax.legend(lines[0] + lines2[0], lines[1] + lines2[1], fontsize=8, loc="center right")
    ordered = "in order" if p["ordered"] else "NOT all found / in order"
    ax.set_title(f"Seed {s}: phase boundaries t1..t4 = {bounds} ({ordered})", fontsize=10)
    return save_figure(fig, path, dpi=110)


def draw_all(results: dict[str, "Trajectory"], trained: "SeedOutcome", out: Path) -> dict[str, str]:
    out = Path(out)
    return {
        "alignment": alignment_figure(results, out / "alignment.png"),
        "offdiag": offdiag_figure(results["identity-fixed-diag"], out / "offdiag.png"),
        "phases": phases_figure(results["identity-fixed-diag"], trained, out / "phases.png"),
    }
