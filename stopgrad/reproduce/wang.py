"""Claim set ``wang-2021``: the linear-network theory of Wang, Chen, Du & Tian, "Towards
Demystifying Representation Learning with Non-contrastive Self-supervision" (arXiv 2110.04947).

Runs the model of :mod:`stopgrad.theory.wang` over seeds: the three predictors on the two-level
spectrum (claims 1, 3 and 4) and a weight-decay sweep with DirectPred on the log-spaced spectrum
(claim 2). The thresholds below were set from the theory and a 3-seed pilot of the same settings,
before the full run.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any, Callable

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import torch  # noqa: E402

from stopgrad.predictors import directcopy_weight, directset_weight  # noqa: E402
from stopgrad.reproduce.base import Claim, ClaimSet, Verdict, fraction, register_claim_set  # noqa: E402
from stopgrad.reproduce.base import mean_of as _m, std_of as _sd  # noqa: E402
from stopgrad.reproduce.report import save_figure  # noqa: E402
from stopgrad.theory.wang import (PREDICTORS, WangConfig, WangTrajectory, cutoff, downstream_errors,  # noqa: E402
                                  kept_directions, principal_angles, samples_needed, simulate, survives)

# --- criteria, fixed before the runs ------------------------------------------------------------
MIN_FRACTION = 0.8  # a claim holds when at least this fraction of (variant, seed) runs shows it
MAX_ANGLE = 1.0  # degrees: the learned row space "aligns" with the invariant span
MAX_NUISANCE = 1e-3  # ... and "discards" the rest: ||W U_nuis||² / ||W||² at most this
KEEP_FRAC = 0.01  # a direction is kept when ||W u_j|| >= 1% of the largest (discarded ones decay to ~0)
COUNT_SLACK = 1  # claim 2: kept count within 1 direction (one grid step of sigma²) of the prediction
TARGET_ERROR = 0.1  # claim 3: downstream relative test error to reach
MIN_RATIO = 3.0  # claim 3: raw input needs >= 3x the samples of the learned representation
SAME_ANGLE = 1.0  # claim 4: DirectCopy's and DirectPred's row spaces within 1 degree

# --- settings -----------------------------------------------------------------------------------
#: Claims 1, 3, 4: d = 32 inputs, 4 invariant directions (sigma² 0.1), 28 perturbed (sigma² 3),
#: data variance 1, wd 0.1: the predicted cut-off is sigma² = 1.5, between the two levels.
PRIMARY = WangConfig()
#: Claim 2: 32 directions with sigma² log-spaced in [0.05, 5], DirectPred, swept weight decay.
SWEEP = WangConfig(spectrum="log", predictor="directpred")
WDS = (0.0, 0.05, 0.08, 0.12, 0.2)
NS = [2, 3, 4, 6, 8, 12, 16, 24, 32, 40, 48, 64, 96, 128, 256]
COST_DIMS = (32, 128, 512)
LONGER = 4  # claim 2 is also run this many times longer and reported beside the verdict (added after the
            # first full run, in which directions near the cut-off had not finished decaying at 6,000 steps)
QUICK = WangConfig(d=12, k=12, invariant=3, steps=1500, log_every=50, lr=0.03)
QUICK_SWEEP = QUICK.with_(spectrum="log", predictor="directpred")
QUICK_WDS = (0.0, 0.12)
QUICK_NS = [2, 3, 4, 6, 8, 12, 16, 24, 32, 64]

LABELS = {"trained": "trained W_p (gradient, wd_pred = wd)", "directpred": "DirectPred (F^1/2)",
          "directcopy": "DirectCopy (F)"}
COLORS = {"trained": "#7a4fb0", "directpred": "#1f5fa8", "directcopy": "#2c9a4a"}

CLAIMS = {
    "projection": Claim(
        id="projection", source="Sec. 4 (main theorem: a desirable projection)",
        statement="In a linear network trained with predictor, stop-gradient and weight decay, the encoder's "
                  "row space aligns with the low-augmentation-variance directions and discards the "
                  "high-variance ones (trained predictor, DirectPred and DirectCopy).",
        paper_value="proved for DirectSet(alpha) in the linear model (no number given)",
        measure=f"fraction of (predictor, seed) runs whose largest principal angle between the top-r row space "
                f"of W and the invariant span is <= {MAX_ANGLE} degrees AND whose energy on the perturbed "
                f"directions ||W U_nuis||²/||W||² is <= {MAX_NUISANCE}",
        criterion=f"fraction >= {MIN_FRACTION}"),
    "wd-threshold": Claim(
        id="wd-threshold", source="Sec. 4 (weight decay as an implicit threshold)",
        statement="Weight decay acts as a threshold on augmentation variance: sweeping it moves the cut-off "
                  "between kept and discarded directions as the theory predicts (s²/(s + sigma²) > 4 wd); "
                  "without weight decay no direction is discarded.",
        paper_value="threshold set by the weight decay (no number given)",
        measure=f"fraction of (wd, seed) runs (DirectPred, log spectrum) whose kept directions (||W u_j|| >= "
                f"{KEEP_FRAC} x max) are the lowest-sigma² ones and number the predicted count +/- {COUNT_SLACK}"
                f" (wd = 0: all of them); the median cut-off must also fall as wd grows",
        criterion=f"fraction >= {MIN_FRACTION} and the cut-off decreases with wd"),
    "sample-complexity": Claim(
        id="sample-complexity", source="Sec. 4 (downstream sample complexity)",
        statement="A linear probe on the learned representation needs far fewer labelled examples for a "
                  "given error than one on the raw input (labels depend on the invariant part).",
        paper_value="sample complexity from the input dimension d down to the invariant dimension r",
        measure=f"per seed (DirectPred): n needed for relative test error <= {TARGET_ERROR} on raw x divided by "
                f"n needed on W x",
        criterion=f"ratio >= {MIN_RATIO} in a fraction >= {MIN_FRACTION} of seeds"),
    "directcopy-matches-directpred": Claim(
        id="directcopy-matches-directpred", source="Sec. 5 (DirectCopy)",
        statement="DirectCopy reaches the same projection as DirectPred, at a lower cost per predictor update "
                  "(no eigen-decomposition).",
        paper_value="DirectCopy rivals or beats DirectPred on STL-10, CIFAR-10/100, ImageNet, and is cheaper",
        measure=f"per seed: largest principal angle between DirectCopy's and DirectPred's top-r row spaces "
                f"(same seed, same start) <= {SAME_ANGLE} degrees; plus the time per predictor update at "
                f"D = {', '.join(map(str, COST_DIMS))}",
        criterion=f"fraction >= {MIN_FRACTION} and DirectCopy cheaper at every D"),
}


def _nuisance_energy(tr: WangTrajectory) -> torch.Tensor:
    W, r = tr.W[-1], tr.cfg.invariant
    return (W @ tr.U[..., r:]).pow(2).sum((-2, -1)) / W.pow(2).sum((-2, -1))  # (S,)


def threshold_outcome(tr: WangTrajectory) -> dict[str, Any]:
    """Per seed: kept directions, whether they are a prefix of the (ascending) sigma², the count
    predicted by the theory, and the measured cut-off (geometric mean of the last kept and the
    first discarded sigma²)."""
    cfg, sig = tr.cfg, tr.sigma2
    kept = kept_directions(tr.mode_norms()[-1], KEEP_FRAC)  # (S, d)
    count = kept.sum(-1)
    prefix = torch.tensor([torch.equal(k, torch.arange(cfg.d) < c) for k, c in zip(kept, count.tolist())])
    predicted = int(survives(cfg.data_var, sig, cfg.wd).sum())
    cut = [float((sig[c - 1] * sig[c]).sqrt()) if 0 < c < cfg.d else (float("inf") if c == cfg.d else 0.0)
           for c in count.tolist()]
    if cfg.wd == 0:
        ok = (count == cfg.d).tolist()
    else:
        ok = (prefix & ((count - predicted).abs() <= COUNT_SLACK)).tolist()
    return {"wd": cfg.wd, "kept": count.tolist(), "prefix": prefix.tolist(), "predicted": predicted,
            "predicted_cutoff": cutoff(cfg.data_var, cfg.wd), "measured_cutoff": cut, "ok": ok}


def predictor_cost(dims: tuple[int, ...] = COST_DIMS, repeats: int = 20) -> dict[int, dict[str, float]]:
    """Median seconds per predictor update (DirectPred's ``eigh`` against DirectCopy's copy) at each D."""
    out = {}
    for D in dims:
        X = torch.randn(4 * D, D, generator=torch.Generator().manual_seed(D))
        F = X.T @ X / (4 * D)
        times: dict[str, list[float]] = {"directpred": [], "directcopy": []}
        for _ in range(repeats):
            for name, fn in (("directpred", lambda: directset_weight(F, 0.5, 0.0, 0.0, normalize=False)),
                             ("directcopy", lambda: directcopy_weight(F, 0.0, "none"))):
                t0 = time.perf_counter()
                fn()
                times[name].append(time.perf_counter() - t0)
        med = {k: sorted(v)[len(v) // 2] for k, v in times.items()}
        out[D] = {**med, "ratio": med["directpred"] / max(med["directcopy"], 1e-12)}
    return out


def run(out: Path, seeds: int, quick: bool, log: Callable[[str], None] = print) -> tuple[list[Verdict], dict]:
    """Run on one thread: the matrices are at most 32 x 32, and on a shared 2-core machine OpenMP
    threads made the first full run about 100x slower (722 s instead of 5 s for DirectPred)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        return _run(out, seeds, quick, log)
    finally:
        torch.set_num_threads(threads)


def _run(out: Path, seeds: int, quick: bool, log: Callable[[str], None]) -> tuple[list[Verdict], dict]:
    base, sweep_cfg = (QUICK, QUICK_SWEEP) if quick else (PRIMARY, SWEEP)
    wds, ns = (QUICK_WDS, QUICK_NS) if quick else (WDS, NS)
    timing: dict[str, float] = {}

    def timed(key: str, cfg: WangConfig) -> WangTrajectory:
        t0 = time.time()
        tr = simulate(cfg, seeds)
        timing[key] = round(time.time() - t0, 1)
        log(f"wang-2021: {key}: {seeds} seeds x {cfg.steps} steps in {timing[key]:.0f} s")
        return tr

    runs = {p: timed(p, base.with_(predictor=p)) for p in PREDICTORS}
    sweep = {wd: timed(f"sweep wd={wd}", sweep_cfg.with_(wd=wd)) for wd in wds}
    # not part of the verdict: the same sweep run LONGER times as long (slow decay near the cut-off)
    longer = {wd: timed(f"sweep wd={wd}, {LONGER}x steps",
                        sweep_cfg.with_(wd=wd, steps=LONGER * sweep_cfg.steps, log_every=LONGER * sweep_cfg.log_every))
              for wd in wds if wd > 0}

    # claim 1
    ok1, parts = [], []
    for p, tr in runs.items():
        ang = principal_angles(tr.W[-1], tr.invariant_basis()).amax(-1)  # (S,)
        nuis = _nuisance_energy(tr)
        ok1 += ((ang <= MAX_ANGLE) & (nuis <= MAX_NUISANCE)).tolist()
        parts.append(f"{p}: max angle {float(ang.mean()):.3f}° (worst {float(ang.max()):.3f}°), nuisance energy "
                     f"{float(nuis.mean()):.1e} (worst {float(nuis.max()):.1e})")
    figs = {"projection": _projection_figure(runs, out / "projection.png"),
            "threshold": _threshold_figure(sweep, out / "threshold.png")}
    v1 = Verdict(CLAIMS["projection"], fraction(ok1), holds=_m(fraction(ok1)) >= MIN_FRACTION,
                 detail="; ".join(parts), figures=[figs["projection"]])

    # claim 2
    outcomes = {wd: threshold_outcome(tr) for wd, tr in sweep.items()}
    ok2 = [o for r in outcomes.values() for o in r["ok"]]
    medians = [float(torch.tensor(r["measured_cutoff"]).median()) for r in outcomes.values()]
    falling = all(a > b for a, b in zip(medians, medians[1:]))
    detail2 = "; ".join(f"wd {wd}: kept {_m(r['kept']):.1f} of {sweep_cfg.d} (predicted {r['predicted']}), cut-off "
                        f"sigma² {med:.3g} (predicted {r['predicted_cutoff']:.3g})"
                        for (wd, r), med in zip(outcomes.items(), medians))
    long_out = {wd: threshold_outcome(tr) for wd, tr in longer.items()}
    long_ok = [o for r in long_out.values() for o in r["ok"]]
    detail2 += (f"; median cut-off decreasing with wd: {falling}. Not deciding: with {LONGER}x the steps the "
                f"fraction for wd > 0 is {_m(fraction(long_ok)):.2f} (" + ", ".join(
                    f"wd {wd}: kept {_m(r['kept']):.1f}" for wd, r in long_out.items()) + ")")
    v2 = Verdict(CLAIMS["wd-threshold"], fraction(ok2), holds=_m(fraction(ok2)) >= MIN_FRACTION and falling,
                 detail=detail2, figures=[figs["threshold"]],
                 extra={"per_wd": {str(k): v for k, v in outcomes.items()},
                        f"per_wd_{LONGER}x_steps": {str(k): v for k, v in long_out.items()}})

    # claim 3
    down = downstream_errors(runs["directpred"], ns)
    need_raw = samples_needed(down["n"], down["raw"], TARGET_ERROR)
    need_learned = samples_needed(down["n"], down["learned"], TARGET_ERROR)
    ratio = (need_raw / need_learned).tolist()
    figs["samples"] = _samples_figure(down, out / "sample-complexity.png")
    v3 = Verdict(CLAIMS["sample-complexity"], ratio,
                 holds=_m(fraction([r >= MIN_RATIO for r in ratio])) >= MIN_FRACTION,
                 detail=(f"n for error <= {TARGET_ERROR}: raw x (d = {base.d}) {_m(need_raw.tolist()):.1f} ± "
                         f"{_sd(need_raw.tolist()):.1f}, learned W x {_m(need_learned.tolist()):.1f} ± "
                         f"{_sd(need_learned.tolist()):.1f} (invariant dimension r = {base.invariant})"),
                 figures=[figs["samples"]],
                 extra={"n": down["n"].tolist(), "raw_error_mean": down["raw"].mean(1).tolist(),
                        "learned_error_mean": down["learned"].mean(1).tolist()})

    # claim 4
    dp, dc = runs["directpred"], runs["directcopy"]
    r = base.invariant
    Vp = torch.linalg.svd(dp.W[-1], full_matrices=False).Vh[..., :r, :].mT  # (S, d, r)
    same = principal_angles(dc.W[-1], Vp).amax(-1)  # (S,)
    cost = predictor_cost(COST_DIMS if not quick else (16, 64))
    cheaper = all(c["ratio"] > 1 for c in cost.values())
    figs["directcopy"] = _directcopy_figure(dp, dc, cost, out / "directcopy.png")
    ok4 = (same <= SAME_ANGLE).tolist()
    v4 = Verdict(CLAIMS["directcopy-matches-directpred"], fraction(ok4),
                 holds=_m(fraction(ok4)) >= MIN_FRACTION and cheaper,
                 detail=(f"angle DirectCopy vs DirectPred {float(same.mean()):.3f}° (worst {float(same.max()):.3f}°); "
                         "time per update DirectPred / DirectCopy: "
                         + ", ".join(f"D={D}: {c['directpred'] * 1e6:.0f} µs / {c['directcopy'] * 1e6:.0f} µs "
                                     f"= {c['ratio']:.1f}x" for D, c in cost.items())),
                 figures=[figs["directcopy"]], extra={"cost": {str(k): v for k, v in cost.items()}})
    settings = {"primary": base.as_dict(), "sweep": sweep_cfg.as_dict(), "wds": list(wds), "ns": ns,
                "timing_s": timing, "threads": 1,
                "criteria": {"MIN_FRACTION": MIN_FRACTION, "MAX_ANGLE": MAX_ANGLE, "MAX_NUISANCE": MAX_NUISANCE,
                             "KEEP_FRAC": KEEP_FRAC, "COUNT_SLACK": COUNT_SLACK, "TARGET_ERROR": TARGET_ERROR,
                             "MIN_RATIO": MIN_RATIO, "SAME_ANGLE": SAME_ANGLE},
                "choices": "see stopgrad/theory/wang.py (data model, predictors, initialisation, optimiser)"}
    return [v1, v2, v3, v4], settings


def _band(ax, x, vals: torch.Tensor, color: str, label: str | None, ls: str = "-") -> None:
    """Median and the 10-90% range over seeds (the last axis of ``vals`` ``(T, S)``): a band that
    stays positive on the log scales used here, where mean ± std would not."""
    q = torch.quantile(vals.double(), torch.tensor([0.1, 0.5, 0.9], dtype=torch.float64), dim=-1)
    ax.plot(x, q[1], color=color, label=label, ls=ls, lw=1.6)
    ax.fill_between(x, q[0], q[2], color=color, alpha=0.18)


def _projection_figure(runs: dict[str, WangTrajectory], path: Path) -> str:
    fig, axes = plt.subplots(2, len(runs), figsize=(4.6 * len(runs), 7), squeeze=False)
    for col, (p, tr) in enumerate(runs.items()):
        r, steps = tr.cfg.invariant, tr.steps
        norms = tr.mode_norms()  # (T, S, d)
        ax = axes[0, col]
        _band(ax, steps, norms[..., :r].mean(-1), "#1f5fa8", f"invariant (sigma² {tr.cfg.sigma2_low:g})")
        _band(ax, steps, norms[..., r:].mean(-1), "#b4321f", f"perturbed (sigma² {tr.cfg.sigma2_high:g})")
        ax.set_yscale("log")
        ax.set_title(f"{LABELS[p]}: ||W u_j||", fontsize=10)
        ax.legend(fontsize=8)
        ax = axes[1, col]
        ang = principal_angles(tr.W, tr.invariant_basis().unsqueeze(0)).amax(-1)  # (T, S)
        _band(ax, steps, ang, COLORS[p], None)
        ax.set_yscale("log")
        ax.set_title("largest principal angle to the invariant span (°)", fontsize=10)
        ax.set_xlabel("step")
        for a in axes[:, col]:
            a.grid(alpha=0.3)
    fig.suptitle(f"Claim 1: linear network, wd = {next(iter(runs.values())).cfg.wd:g} (median, band: 10-90% of seeds)",
                 fontsize=11)
    return save_figure(fig, path)


def _threshold_figure(sweep: dict[float, WangTrajectory], path: Path) -> str:
    fig, ax = plt.subplots(figsize=(7.5, 4.8))
    cmap = plt.get_cmap("viridis")
    for i, (wd, tr) in enumerate(sweep.items()):
        color = cmap(i / max(len(sweep) - 1, 1))
        final = tr.mode_norms()[-1]  # (S, d)
        ax.plot(tr.sigma2, final.mean(0).clamp_min(1e-8), "o-", ms=3, color=color, label=f"wd = {wd:g}")
        c = cutoff(tr.cfg.data_var, wd)
        if c < float(tr.sigma2.max()) * 2:
            ax.axvline(c, color=color, ls="--", lw=1)
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("augmentation variance sigma_j² of direction u_j")
    ax.set_ylabel("final ||W u_j|| (mean over seeds)")
    ax.set_title("Claim 2: weight decay discards the high-variance directions\n(dashed: predicted cut-off "
                 "s/(4 wd) - s)", fontsize=10)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    return save_figure(fig, path)


def _samples_figure(down: dict[str, torch.Tensor], path: Path) -> str:
    fig, ax = plt.subplots(figsize=(6.5, 4.5))
    _band(ax, down["n"], down["raw"], "#b4321f", "raw input x")
    _band(ax, down["n"], down["learned"], "#1f5fa8", "learned W x (DirectPred)")
    ax.axhline(TARGET_ERROR, color="gray", ls=":")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("labelled examples n")
    ax.set_ylabel("relative test error (MSE / Var y)")
    ax.set_title("Claim 3: downstream sample complexity (ridge probe; median, 10-90% of seeds)", fontsize=10)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    return save_figure(fig, path)


def _directcopy_figure(dp: WangTrajectory, dc: WangTrajectory, cost: dict[int, dict[str, float]], path: Path) -> str:
    fig, axes = plt.subplots(1, 2, figsize=(11, 4.2))
    r = dp.cfg.invariant
    for tr, p in ((dp, "directpred"), (dc, "directcopy")):
        norms = tr.mode_norms()
        _band(axes[0], tr.steps, norms[..., :r].mean(-1), COLORS[p], f"{LABELS[p]}: invariant")
        _band(axes[0], tr.steps, norms[..., r:].mean(-1), COLORS[p], f"{LABELS[p]}: perturbed", ls="--")
    axes[0].set_yscale("log")
    axes[0].set_xlabel("step")
    axes[0].set_title("||W u_j|| (same seeds, same start)", fontsize=10)
    axes[0].legend(fontsize=7)
    dims = list(cost)
    x = torch.arange(len(dims)).float()
    axes[1].bar(x - 0.2, [cost[D]["directpred"] * 1e6 for D in dims], 0.4, color=COLORS["directpred"], label="DirectPred")
    axes[1].bar(x + 0.2, [cost[D]["directcopy"] * 1e6 for D in dims], 0.4, color=COLORS["directcopy"], label="DirectCopy")
    axes[1].set_xticks(x.tolist(), [f"D = {D}" for D in dims])
    axes[1].set_yscale("log")
    axes[1].set_ylabel("µs per predictor update (median)")
    axes[1].set_title("cost of setting W_p from F", fontsize=10)
    axes[1].legend(fontsize=8)
    for a in axes:
        a.grid(alpha=0.3)
    return save_figure(fig, path)


register_claim_set(ClaimSet(
    name="wang-2021", paper="Wang, Chen, Du & Tian, Towards Demystifying Representation Learning with "
                            "Non-contrastive Self-supervision (arXiv 2110.04947)",
    description="linear network with predictor and stop-gradient: the learned projection, weight decay as a "
                "threshold on augmentation variance, downstream sample complexity, DirectCopy vs DirectPred",
    run=run, default_seeds=10, quick_seeds=2))
