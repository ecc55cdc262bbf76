"""Claim set ``wen-li-2022``: the prediction-head mechanism of Wen & Li (NeurIPS 2022).

Runs the toy model of :mod:`stopgrad.theory.wen_li` for three heads (identity-initialised with a
fixed diagonal, fixed to ``I``, trained from a random start) over seeds, decides the five claims
on the primary setting :data:`PRIMARY`, and reports the same fractions over the documented range
:data:`RANGE` of settings. Every threshold below was fixed before the first full run.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import torch

from stopgrad.reproduce.base import Claim, ClaimSet, Verdict, fraction, register_claim_set
from stopgrad.theory.wen_li import Trajectory, WenLiConfig, simulate
from stopgrad.theory.wen_li_grid import HEADS as GRID_HEADS
from stopgrad.theory.wen_li_grid import SHARED, simulate_grid

#: What settings of one grid must share besides their length (read from a longer run with ``until``).
GRID_SHAPES = tuple(f for f in SHARED if f not in ("steps", "log_every"))

# --- criteria, fixed before the runs ------------------------------------------------------------
DETECT = 0.5  # neuron j "detects" v_l when |cos(w_j, v_l)| >= DETECT and exceeds its cos with the other feature
MIN_FRACTION = 0.8  # a "with high probability" theorem holds when >= 80% of seeds show it
RISE_MIN = 0.02  # the off-diagonal "rises" when its peak ||E - diag E||_F reaches at least this
FALL_TO = 0.5  # ... and "falls back" when its final value is at most FALL_TO x the peak
RANDOM_HEAD_FRACTION = 0.5  # claim 5: a random-init trained head "also works" in >= half the seeds

# --- settings -----------------------------------------------------------------------------------
#: Primary setting (the claims' verdicts), chosen before the full run from the paper's regime:
#: alpha1/alpha2 = 3 (with E = I the cubic race is won by v1 in both neurons for most
#: initialisations: theory needs m <= o(alpha1/alpha2)); many noise patches (12 of 16) with
#: ||xi|| about 2, so that noise dominates every neuron's output at initialisation, as in the
#: theory's small-initialisation phase I; lr_head = lr/10 (the analysis takes eta_E < eta); small
#: SGD steps on fresh batches (the theory follows SGD close to gradient flow).
PRIMARY = WenLiConfig(d=16, patches=16, feature_patches=4, m=2, alpha1=3.0, alpha2=1.0, noise=2.0,
                      init_std=1.0, lr=0.02, lr_head=0.002, batch=128, steps=10000, log_every=50)
#: The documented range: each entry changes one thing of PRIMARY.
RANGE: dict[str, dict[str, Any]] = {
    "primary": {},
    "lr_head = lr": {"lr_head": 0.02},
    "alpha1/alpha2 = 2": {"alpha2": 1.5},
    "2x steps": {"steps": 20000, "log_every": 100},
}
QUICK = PRIMARY.with_(d=12, patches=12, feature_patches=3, steps=1000, batch=64, lr=0.05, lr_head=0.005,
                      log_every=25)
QUICK_RANGE: dict[str, dict[str, Any]] = {"primary": {}}

HEAD_LABELS = {"identity-fixed-diag": "trained head, E = I + off-diagonal (diagonal fixed)",
               "fixed-identity": "head fixed to E = I", "random": "trained head, random init"}


@dataclass
class SeedOutcome:
    """Per-seed events read from one trajectory."""

    one_each: list[bool]  # one neuron detects v1, another v2
    all_v1: list[bool]  # every neuron detects v1 (dimensional collapse)
    rise_fall: list[bool]
    phases: list[dict[str, Any]]  # t1..t4 (steps) or None, and whether they are in order


def detects(align: torch.Tensor) -> torch.Tensor:
    """``(S, m, 2)`` alignments → ``(S, m)``: 0 = detects v1, 1 = detects v2, -1 = neither."""
    best = align.argmax(-1)
    ok = align.max(-1).values >= DETECT
    return torch.where(ok, best, torch.full_like(best, -1))


def outcome(tr: Trajectory) -> SeedOutcome:
    det = detects(tr.align[-1])  # (S, m)
    one_each = [(d == 0).any().item() and (d == 1).any().item() for d in det]
    all_v1 = [(d == 0).all().item() for d in det]
    off = tr.offdiag()  # (T, S)
    peak, final = off.max(0).values, off[-1]
    rise_fall = [(p >= RISE_MIN and f <= FALL_TO * p) for p, f in zip(peak.tolist(), final.tolist())]
    return SeedOutcome(one_each, all_v1, rise_fall, [phases(tr, s) for s in range(off.shape[1])])


def _first(mask: torch.Tensor, steps: torch.Tensor, start: int = 0) -> tuple[int | None, int | None]:
    """First index >= start where ``mask`` is true, and its step."""
    idx = torch.nonzero(mask[start:]).flatten()
    if len(idx) == 0:
        return None, None
    i = int(idx[0]) + start
    return i, int(steps[i])


def phases(tr: Trajectory, s: int) -> dict[str, Any]:
    """Phase boundaries of seed ``s`` from its trajectory (Wen & Li's four phases, Sec. 5).

    - t1 (end of phase I): first step at which some neuron ``a`` detects v1;
    - t2 (substitution): first step after t1 at which ``|E[b, a]|`` (the head feeding neuron a's
      output into the other neuron b) reaches half of its peak;
    - t3 (acceleration done): first step after t2 at which neuron b detects v2;
    - t4 (end phase): first step after the off-diagonal peak at which ``||E − diag E||`` is back
      below half of the peak.
    ``ordered`` is true when all four exist and t1 <= t2 <= t3 <= t4.
    """
    steps, align, head = tr.steps, tr.align[:, s], tr.head[:, s]  # (T, m, 2), (T, m, m)
    m = align.shape[1]
    out: dict[str, Any] = {"t1": None, "t2": None, "t3": None, "t4": None, "ordered": False, "a": None, "b": None}
    v1 = (align[..., 0] >= DETECT) & (align[..., 0] > align[..., 1])  # (T, m)
    i1, t1 = _first(v1.any(-1), steps)
    if i1 is None or m < 2:
        return out
    a = int(align[i1, :, 0].argmax())
    b = max((j for j in range(m) if j != a), key=lambda j: float(align[-1, j, 1]))
    out.update(t1=t1, a=a, b=b)
    e_ba = head[:, b, a].abs()
    i2, t2 = _first(e_ba >= 0.5 * e_ba.max(), steps, i1)
    if i2 is None or float(e_ba.max()) < RISE_MIN / 2:
        return out
    out["t2"] = t2
    v2b = (align[:, b, 1] >= DETECT) & (align[:, b, 1] > align[:, b, 0])
    i3, t3 = _first(v2b, steps, i2)
    if i3 is None:
        return out
    out["t3"] = t3
    off = tr.offdiag()[:, s]
    ipk = int(off.argmax())
    i4, t4 = _first(off <= FALL_TO * off[ipk], steps, max(ipk, i3))
    if i4 is None:
        return out
    out["t4"] = t4
    # acceleration: growth of |<w_b, v2>| per step in phase III against phases I-II
    f = tr.feat[:, s, b, 1].abs()
    before = (f[i2] - f[0]) / max(int(steps[i2]), 1)
    during = (f[i3] - f[i2]) / max(int(steps[i3] - steps[i2]), 1)
    out["acceleration"] = float(during / before) if before > 0 else float("inf")
    out["ordered"] = t1 <= t2 <= t3 <= t4
    return out


CLAIMS = {
    "thm1-one-neuron-per-feature": Claim(
        id="thm1-one-neuron-per-feature", source="Thm 1 / Cor. 2",
        statement="With m = 2 and the identity-initialised head trained (diagonal fixed), one neuron "
                  "ends up detecting the strong feature v1 and the other the weak feature v2.",
        paper_value="with high probability (no number given)",
        measure="fraction of seeds where one neuron detects v1 and the other v2 (|cos| >= 0.5, larger than "
                "with the other feature) at the end",
        criterion=f"fraction >= {MIN_FRACTION}"),
    "thm3-fixed-head-collapse": Claim(
        id="thm3-fixed-head-collapse", source="Thm 3 / Cor. 4",
        statement="With the head fixed to E = I (and m <= o(alpha1/alpha2)), every neuron detects only v1: "
                  "dimensional collapse.",
        paper_value="with high probability (no number given)",
        measure="fraction of seeds where every neuron detects v1 at the end (head fixed to I)",
        criterion=f"fraction >= {MIN_FRACTION}"),
    "rise-and-fall": Claim(
        id="rise-and-fall", source="Sec. 2 (observation), Phase IV",
        statement="The off-diagonal entries of the trained head rise and then fall back toward zero.",
        paper_value="rise-and-fall seen in every real-data run; ||E - I|| <= 1/poly(d) at the end",
        measure=f"fraction of seeds whose ||E - diag E||_F peaks at >= {RISE_MIN} and ends at <= "
                f"{FALL_TO} x its peak (trained identity-initialised head)",
        criterion=f"fraction >= {MIN_FRACTION}"),
    "four-phases": Claim(
        id="four-phases", source="Sec. 5 (Phases I-IV)",
        statement="Training with the head goes through four phases in order: v1 learned by one neuron; "
                  "substitution (off-diagonal grows); accelerated v2 learning in the substituted neuron; "
                  "end phase with E returning toward I.",
        measure="fraction of seeds in which the four boundaries t1..t4 (see `phases`) are all found and "
                "in order",
        criterion=f"fraction >= {MIN_FRACTION}"),
    "random-head": Claim(
        id="random-head", source="Sec. 1 (BYOL/SimSiam heads are randomly initialised)",
        statement="A trained linear head from a random initialisation also avoids dimensional collapse "
                  "(one neuron per feature). The theory does not cover this case; we report what happens.",
        measure="fraction of seeds with one neuron per feature (random-init head, all entries trained)",
        criterion=f"fraction >= {RANDOM_HEAD_FRACTION}"),
}


def simulate_range(base: WenLiConfig, settings_range: dict[str, dict[str, Any]], seeds: int
                   ) -> dict[str, dict[str, Trajectory]]:
    """The trained identity head and the head fixed to I for every setting of the range, as batched
    grids (:func:`stopgrad.theory.wen_li_grid.simulate_grid`: both heads of a seed share the start and
    the samples). Settings that differ only in length share one run, read at each one's length."""
    cfgs = {name: base.with_(**change) for name, change in settings_range.items()}
    groups: dict[tuple, list[str]] = {}
    for name, c in cfgs.items():
        groups.setdefault(tuple(getattr(c, f) for f in GRID_SHAPES), []).append(name)
    results: dict[str, dict[str, Trajectory]] = {}
    for names in groups.values():
        longest = max(cfgs[n].steps for n in names)
        every = min(cfgs[n].log_every for n in names)
        gt = simulate_grid([cfgs[n].with_(steps=longest, log_every=every) for n in names], seeds)
        for g, n in enumerate(names):
            cut = gt.until(cfgs[n].steps)
            results[n] = {h: cut.trajectory(g, i) for i, h in enumerate(GRID_HEADS)}
    return results


def run(out: Path, seeds: int, quick: bool, log: Callable[[str], None] = print) -> tuple[list[Verdict], dict]:
    """Simulate every head on every setting, decide the claims on the primary setting, draw figures."""
    from stopgrad.reproduce import wen_li_plots as plots

    base = QUICK if quick else PRIMARY
    settings_range = QUICK_RANGE if quick else RANGE
    t0 = time.time()
    results = simulate_range(base, settings_range, seeds)
    timing: dict[str, float] = {"range (trained and fixed heads, batched)": round(time.time() - t0, 1)}
    log(f"wen-li-2022: {len(settings_range)} settings x 2 heads x {seeds} seeds in {timing['range (trained and fixed heads, batched)']:.0f} s")
    t0 = time.time()
    results["primary"]["random"] = simulate(base.with_(head="random"), seeds)
    timing["primary/random"] = round(time.time() - t0, 1)
    log(f"wen-li-2022: primary, random head: {seeds} seeds x {base.steps} steps in {timing['primary/random']:.0f} s")
    prim = results["primary"]
    trained, fixed, rnd = (outcome(prim[h]) for h in ("identity-fixed-diag", "fixed-identity", "random"))
    figs = plots.draw_all(results["primary"], trained, out)

    range_table = {}
    for name, rs in results.items():
        tr_o, fx_o = outcome(rs["identity-fixed-diag"]), outcome(rs["fixed-identity"])
        range_table[name] = {
            "change": settings_range[name],
            "thm1_one_each": _mean(tr_o.one_each), "thm3_all_v1": _mean(fx_o.all_v1),
            "fixed_head_one_each": _mean(fx_o.one_each), "rise_and_fall": _mean(tr_o.rise_fall),
            "four_phases": _mean([p["ordered"] for p in tr_o.phases])}
    ordered = [p["ordered"] for p in trained.phases]
    accel = [p["acceleration"] for p in trained.phases if p["ordered"] and p.get("acceleration") is not None]
    verdicts = [
        _verdict("thm1-one-neuron-per-feature", trained.one_each, figs["alignment"],
                 f"head fixed to I: {_mean(fixed.one_each):.2f} of seeds end with one neuron per feature"),
        _verdict("thm3-fixed-head-collapse", fixed.all_v1, figs["alignment"],
                 f"trained head: {_mean(trained.all_v1):.2f} of seeds collapse onto v1"),
        _verdict("rise-and-fall", trained.rise_fall, figs["offdiag"],
                 f"peak ||E - diag E|| {_offpeak(prim['identity-fixed-diag']):.3g} (mean over seeds)"),
        _verdict("four-phases", ordered, figs["phases"],
                 (f"phase-III growth of |<w_b, v2>| per step vs phases I-II: median x{_median(accel):.3g} "
                  f"over {len(accel)} ordered seeds") if accel else "no seed shows all four phases in order",
                 extra={"per_seed": trained.phases}),
        _verdict("random-head", rnd.one_each, figs["alignment"],
                 f"random head: {_mean(rnd.all_v1):.2f} of seeds collapse onto v1; peak ||offdiag|| "
                 f"{_offpeak(prim['random']):.3g}", threshold=RANDOM_HEAD_FRACTION),
    ]
    for v in verdicts:
        v.extra.setdefault("range", {k: r for k, r in range_table.items()})
    from stopgrad.reproduce.wen_li_regime import regime_verdicts  # imports this module

    t0 = time.time()
    regime, regime_settings = regime_verdicts(base, out, seeds, quick, log)
    timing["regime study"] = round(time.time() - t0, 1)
    verdicts += regime
    settings = {"primary": base.as_dict(), "range": {k: v for k, v in settings_range.items()},
                "range_results": range_table, "timing_s": timing, "regime": regime_settings,
                "criteria": {"DETECT": DETECT, "MIN_FRACTION": MIN_FRACTION, "RISE_MIN": RISE_MIN,
                             "FALL_TO": FALL_TO, "RANDOM_HEAD_FRACTION": RANDOM_HEAD_FRACTION},
                "choices": "see stopgrad/theory/wen_li.py: v1, v2 = alpha_l e_1, alpha_l e_2; l uniform; "
                           "|S(X)| = feature_patches random patches; noise N(0, noise^2 I/d); views = "
                           "complementary random halves of the patches; w ~ N(0, init_std^2 I/d); "
                           "loss not symmetrised; BN per neuron, no affine, eps 1e-6"}
    return verdicts, settings


def _mean(xs: list[bool]) -> float:
    return sum(map(bool, xs)) / len(xs) if xs else float("nan")


def _median(xs: list[float]) -> float:
    s = sorted(xs)
    return s[len(s) // 2] if s else float("nan")


def _offpeak(tr: Trajectory) -> float:
    return float(tr.offdiag().max(0).values.mean())


def _verdict(cid: str, flags: list[bool], fig: str, detail: str, threshold: float = MIN_FRACTION,
             extra: dict | None = None) -> Verdict:
    values = fraction(flags)
    return Verdict(CLAIMS[cid], values=values, holds=_mean(flags) >= threshold, detail=detail,
                   figures=[fig], extra=extra or {})


register_claim_set(ClaimSet(
    name="wen-li-2022", paper="Wen & Li, The Mechanism of Prediction Head in Non-contrastive SSL (NeurIPS 2022)",
    description="one-layer cubic ConvNet on strong/weak-feature patch data: trained identity head vs head "
                "fixed to I vs random head; rise-and-fall of the off-diagonal; the four phases",
    run=run, default_seeds=10, quick_seeds=4))
