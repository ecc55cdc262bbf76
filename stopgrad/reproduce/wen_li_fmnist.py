"""Claim set ``wen-li-2022-fmnist``: the empirical claims of Wen & Li (NeurIPS 2022, arXiv
2205.06226) about a linear prediction head, on Fashion-MNIST, as a grid of ordinary runs.

Wen & Li train a linear head initialised to the identity, also with its diagonal fixed (only the
off-diagonal entries learn), and report that (Sec. 5 and its figures) the off-diagonal entries
*rise and then fall* back toward zero during training, that the head can be strongly asymmetric,
and that the fixed-diagonal head still learns competitive representations. Here every variant is
``fashion-mnist/byol`` (ConvNet, EMA target, normalised MSE) with only ``method.predictor``
changed: the identity-initialised head, the fixed-diagonal head, a randomly initialised linear
head (for contrast) and the MLP predictor (the reference for "competitive"), each trained for
:data:`EPOCHS` epochs with the head's ``‖offdiag W‖``, ``‖diag W‖`` and ``‖W − Wᵀ‖/‖W‖`` logged
every :data:`DIAG_EVERY` steps (``stopgrad.diagnostics.linear_head_dynamics``).

``--quick`` runs every cell for a few steps on the synthetic dataset: it checks the machinery and
the file formats, and its verdicts mean nothing.
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from stopgrad.reproduce.base import Claim, ClaimSet, Verdict, fraction, mean_of, register_claim_set  # noqa: E402
from stopgrad.reproduce.report import save_figure  # noqa: E402
from stopgrad.rundir import read_metrics  # noqa: E402
from stopgrad.sweep import FMNIST_BACKBONES, PUBLISHED_FMNIST_VIEWS, Variant, run_variants  # noqa: E402

# --- criteria, fixed before the runs ------------------------------------------------------------
MIN_FRACTION = 0.8  # of seeds, as for the theory claims of wen-li-2022
RISE = 2.0  # the peak of ‖offdiag W‖ is at least this multiple of its first logged value ...
FALL = 0.8  # ... and its last value is at most this fraction of the peak
COMPETITIVE = 0.01  # fixed-diagonal kNN at least the MLP predictor's minus this
EPOCHS, DIAG_EVERY = 2, 20
HEADS = {"identity-init": "identity", "fixed-diagonal": "fixed-diagonal", "random-linear": "linear", "mlp": "mlp"}
QUICK_EXTRA = ("data.dataset=synthetic", "data.batch_size=32", "model.width=0.25", "train.steps=6",
               "train.ckpt_every=1000", "eval.knn_k=5", "eval.linear=false", "train.diag_every=2")
TRACKED = ("diag/offdiag_norm", "diag/diag_norm", "diag/asymmetry")
VIEWS = PUBLISHED_FMNIST_VIEWS.removeprefix("data.views=")  # its published numbers' views, the default


def variants(quick: bool, views: str = VIEWS, backbone: str = "plain") -> list[Variant]:
    common = (FMNIST_BACKBONES[backbone], f"train.epochs={EPOCHS}", f"train.diag_every={DIAG_EVERY}",
              f"data.views={views}", "eval.knn_every=0", "eval.linear=true")
    common += QUICK_EXTRA if quick else ()
    out = []
    for name, head in HEADS.items():
        extra = ("method.track_correlation=true",) if head != "mlp" else ()
        out.append(Variant(name, "fashion-mnist/byol", (f"method.predictor={head}", *extra, *common)))
    return out


RISE_FALL_MEASURE = f"per seed: peak ‖offdiag W‖ >= {RISE:g}x its first logged value and last value <= {FALL:g}x the peak"


def rise_fall_claim(cid: str, source: str, statement: str, paper_value: str) -> Claim:
    """A rise-and-fall claim: the per-seed rule :func:`rises_and_falls`, in at least MIN_FRACTION of seeds."""
    return Claim(id=cid, source=source, statement=statement, paper_value=paper_value, measure=RISE_FALL_MEASURE,
                 criterion=f"fraction of seeds >= {MIN_FRACTION}")


CLAIMS = {
    "fmnist-identity-offdiag-rise-fall": rise_fall_claim(
        "fmnist-identity-offdiag-rise-fall", "Sec. 5 (the trained head's off-diagonal entries)",
        "The off-diagonal entries of an identity-initialised linear head rise and then fall during training.",
        "rise, then fall back toward zero (their figures, real data)"),
    "fmnist-fixed-diagonal-rise-fall": rise_fall_claim(
        "fmnist-fixed-diagonal-rise-fall", "Sec. 5 (the head with its diagonal fixed)",
        "With the diagonal fixed at 1, the trained off-diagonal entries rise and then fall.",
        "rise, then fall (their figures, real data)"),
    "fmnist-fixed-diagonal-competitive": Claim(
        id="fmnist-fixed-diagonal-competitive", source="Sec. 5",
        statement="An identity-initialised head with a fixed diagonal learns competitive representations.",
        paper_value="competitive with a trained head (their tables, real data)",
        measure="mean kNN top-1 of the fixed-diagonal head minus the MLP predictor's",
        criterion=f"difference >= -{COMPETITIVE:g}"),
}


def trajectory(run_dir: Path, key: str) -> tuple[list[int], list[float]]:
    """``(steps, values)`` of one diagnostic over a run."""
    rows = [r for r in read_metrics(run_dir) if isinstance(r.get(key), (int, float))]
    return [r["step"] for r in rows], [float(r[key]) for r in rows]


def rises_and_falls(values: list[float]) -> bool:
    """The pre-registered rule: a peak of at least ``RISE`` x the first value, reached before the
    end, and a last value at most ``FALL`` x that peak."""
    if len(values) < 3:
        return False
    peak = max(values)
    return peak >= RISE * values[0] and values.index(peak) < len(values) - 1 and values[-1] <= FALL * peak


def run(out: Path, seeds: int, quick: bool, log: Callable[[str], None] = print,
        views: str = VIEWS, backbone: str = "plain") -> tuple[list[Verdict], dict]:
    root = out / "runs"
    vs = variants(quick, views, backbone)
    table = run_variants(vs, range(seeds), root, jobs=2, threads=1, log=log)
    traj = {name: {key: [trajectory(root / name / f"seed{s}", key) for s in range(seeds)] for key in TRACKED}
            for name in HEADS if name != "mlp"}
    fig = _figure(traj, out / "wen-li-fmnist.png")
    verdicts = []
    for cid, name in (("fmnist-identity-offdiag-rise-fall", "identity-init"),
                      ("fmnist-fixed-diagonal-rise-fall", "fixed-diagonal")):
        flags = [rises_and_falls(v) for _, v in traj[name]["diag/offdiag_norm"]]
        peaks = [max(v) if v else float("nan") for _, v in traj[name]["diag/offdiag_norm"]]
        lasts = [v[-1] if v else float("nan") for _, v in traj[name]["diag/offdiag_norm"]]
        asym = [max(v) if v else float("nan") for _, v in traj[name]["diag/asymmetry"]]
        verdicts.append(Verdict(CLAIMS[cid], fraction(flags), holds=mean_of(fraction(flags)) >= MIN_FRACTION,
                                detail=(f"per seed peak ‖offdiag‖ {', '.join(f'{p:.3f}' for p in peaks)}, last "
                                        f"{', '.join(f'{x:.3f}' for x in lasts)}; peak asymmetry "
                                        f"{', '.join(f'{a:.3f}' for a in asym)}"),
                                figures=[fig], extra={"peak": peaks, "last": lasts, "peak_asymmetry": asym}))
    knn = {n: table[n]["knn_top1"] for n in HEADS if "knn_top1" in table.get(n, {})}
    diff = knn["fixed-diagonal"][0] - knn["mlp"][0]
    verdicts.append(Verdict(CLAIMS["fmnist-fixed-diagonal-competitive"], [diff], holds=diff >= -COMPETITIVE,
                            detail="kNN: " + ", ".join(f"{n} {m:.4f}±{s:.4f}" for n, (m, s) in knn.items()),
                            figures=[fig]))
    settings = {"variants": {v.name: [v.preset, *v.overrides] for v in vs}, "seeds": seeds,
                "budget": f"{EPOCHS} epochs per run, 1 thread, 2 runs side by side",
                "criteria": {"rise": RISE, "fall": FALL, "min_fraction": MIN_FRACTION, "competitive": COMPETITIVE},
                "runs": str(root), "table": table}
    return verdicts, settings


def _figure(traj: dict, path: Path) -> str:
    fig, axes = plt.subplots(1, 3, figsize=(15, 4))
    colours = {"identity-init": "#1f5fa8", "fixed-diagonal": "#b4321f", "random-linear": "#6b6b6b"}
    for ax, key, title in zip(axes, TRACKED, ("‖offdiag W‖", "‖diag W‖", "asymmetry ‖W − Wᵀ‖/‖W‖")):
        for name, per_key in traj.items():
            for i, (steps, values) in enumerate(per_key[key]):
                ax.plot(steps, values, color=colours[name], alpha=0.8, lw=1.2, label=name if i == 0 else None)
        ax.set_title(title, fontsize=10)
        ax.set_xlabel("step")
        ax.grid(alpha=0.3)
    axes[0].legend(fontsize=8)
    fig.suptitle("Linear prediction heads on Fashion-MNIST (BYOL, one line per seed)", fontsize=11)
    return save_figure(fig, path)


register_claim_set(ClaimSet(
    name="wen-li-2022-fmnist", paper="Wen & Li (NeurIPS 2022, arXiv 2205.06226), empirical claims",
    description=f"Fashion-MNIST: identity-initialised, fixed-diagonal, random linear and MLP heads on BYOL, "
                f"off-diagonal norm over training ({EPOCHS} epochs per run; 2 runs side by side)",
    run=run, default_seeds=3, quick_seeds=1, views=VIEWS, backbone="plain"))
