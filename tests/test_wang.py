"""The linear-network model of Wang et al. 2021 (``stopgrad.theory.wang``) and claim set ``wang-2021``."""

from __future__ import annotations

import json
import math

import pytest
import torch

from stopgrad.reproduce import run_claim_set
from stopgrad.reproduce import wang as rw
from stopgrad.theory.wang import (WangConfig, WangTrajectory, cutoff, gradients, kept_directions, loss,
                                  principal_angles, probe_error, samples_needed, sample_views, simulate, survives)


def _p_plus(s: float, sigma2: float, wd: float) -> float:
    """Larger root of p s − p²(s + σ²) = wd: the predictor eigenvalue of a kept mode."""
    return (s + math.sqrt(s * s - 4 * wd * (s + sigma2))) / (2 * (s + sigma2))


def test_gradients_match_autograd_of_the_loss():
    g = torch.Generator().manual_seed(0)
    S, k, d = 2, 3, 5
    W, Wp, Wa = (torch.randn(S, k, d, generator=g), torch.randn(S, k, k, generator=g), torch.randn(S, k, d, generator=g))
    M = torch.randn(S, d, d, generator=g)
    B = M @ M.mT
    A = B + torch.diag_embed(torch.rand(S, d, generator=g))
    W_, Wp_ = W.clone().requires_grad_(), Wp.clone().requires_grad_()
    total = loss(W_, Wp_, Wa, A, B).sum() + 0.3 / 2 * W_.pow(2).sum() + 0.7 / 2 * Wp_.pow(2).sum()
    total.backward()
    gW, gWp = gradients(W, Wp, Wa, A, B, 0.3, 0.7)
    assert torch.allclose(gW, W_.grad, atol=1e-4) and torch.allclose(gWp, Wp_.grad, atol=1e-4)


def test_population_loss_equals_the_sample_average():
    cfg = WangConfig(d=4, k=3, invariant=1)
    U = torch.linalg.qr(torch.randn(1, 4, 4, generator=torch.Generator().manual_seed(1)))[0]
    x, x1, x2 = sample_views(U, cfg.data_var, cfg.sigma2(), 200_000, torch.Generator().manual_seed(2))
    W, Wp = torch.randn(1, 3, 4), torch.randn(1, 3, 3)
    sampled = 0.5 * (x1 @ W.mT @ Wp.mT - x2 @ W.mT).pow(2).sum(-1).mean()
    A = (U * (cfg.data_var + cfg.sigma2())) @ U.mT
    B = (U * cfg.data_var) @ U.mT
    assert float(loss(W, Wp, W, A, B)) == pytest.approx(float(sampled), rel=0.02)
    assert torch.allclose(x.mean((0, 1)), torch.zeros(4), atol=0.02)


@pytest.mark.parametrize("predictor", ["directpred", "directcopy", "trained"])
def test_kept_modes_settle_where_the_mode_analysis_says(predictor):
    """Invariant modes reach ``p₊``: ``a = p₊/√(s+σ²)`` (DirectPred), ``a = √(p₊/(s+σ²))``
    (DirectCopy), ``a = p₊·√(wd_pred/wd)`` (trained); perturbed modes decay to ~0."""
    cfg = WangConfig(d=6, k=6, invariant=2, sigma2_low=0.2, sigma2_high=3.0, wd=0.1, predictor=predictor,
                     lr=0.05, steps=3000, log_every=1000)
    tr = simulate(cfg, seeds=2)
    p = _p_plus(1.0, 0.2, 0.1)
    expected = {"directpred": p / math.sqrt(1.2), "directcopy": math.sqrt(p / 1.2), "trained": p}[predictor]
    norms = tr.mode_norms()[-1]  # (S, d)
    assert torch.allclose(norms[:, :2], torch.full((2, 2), expected), rtol=0.01), norms[:, :2]
    assert norms[:, 2:].max() < 1e-3


def test_without_weight_decay_every_direction_survives():
    cfg = WangConfig(d=6, k=6, invariant=2, wd=0.0, predictor="directpred", lr=0.05, steps=3000, log_every=1000)
    norms = simulate(cfg, seeds=2).mode_norms()[-1]
    assert kept_directions(norms).all()
    # DirectPred's fixed point without decay: p = s/(s+σ²), a = p/√(s+σ²)
    assert torch.allclose(norms[:, 2:], torch.full((2, 4), 1 / 4 ** 1.5), rtol=0.02)


def test_cutoff_and_survival_agree():
    for wd in (0.05, 0.1, 0.2):
        c = cutoff(1.0, wd)
        assert survives(1.0, torch.tensor([c * 0.99]), wd).item() and not survives(1.0, torch.tensor([c * 1.01]), wd).item()
    assert cutoff(1.0, 0.0) == math.inf and survives(1.0, torch.tensor([1e6]), 0.0).item()


def test_principal_angles_of_known_subspaces():
    Q = torch.eye(4)[:, :2]  # span(e1, e2)
    assert principal_angles(Q.T * 3, Q).max() < 1e-3
    th = math.radians(30)
    W = torch.tensor([[1.0, 0, 0, 0], [0, math.cos(th), math.sin(th), 0]])  # e2 tilted 30° toward e3
    assert principal_angles(W, Q).tolist() == pytest.approx([0.0, 30.0], abs=1e-3)
    assert principal_angles(torch.eye(4)[2:], Q).tolist() == pytest.approx([90.0, 90.0], abs=1e-3)


def test_probe_error_is_zero_on_the_signal_and_one_on_noise():
    g = torch.Generator().manual_seed(3)
    f, fe = torch.randn(1, 50, 3, generator=g), torch.randn(1, 500, 3, generator=g)
    w = torch.tensor([1.0, -2.0, 0.5])
    assert float(probe_error(f, f @ w, fe, fe @ w, ridge=1e-6)) < 1e-4
    unrelated = float(probe_error(f, torch.randn(1, 50, generator=g), fe, torch.randn(1, 500, generator=g)))
    assert 0.9 < unrelated < 1.5


def test_samples_needed_reads_the_first_n_below_target():
    ns = torch.tensor([2, 4, 8])
    err = torch.tensor([[0.5, 0.5], [0.05, 0.3], [0.01, 0.2]])  # (N, S)
    assert samples_needed(ns, err, 0.1).tolist() == [4.0, math.inf]


def test_threshold_outcome_reads_kept_prefix_and_count():
    cfg = WangConfig(d=5, k=5, invariant=1, spectrum="log", sigma2_min=0.1, sigma2_max=10.0, wd=0.1)
    predicted = int(survives(1.0, cfg.sigma2(), 0.1).sum())
    norms = torch.tensor([[1.0, 0.9, 0.5, 1e-5, 1e-6],  # a prefix of 3
                          [1.0, 1e-5, 0.5, 1e-5, 1e-6]])  # not a prefix
    W = torch.diag_embed(norms).unsqueeze(0)  # (T=1, S=2, 5, 5), U = I
    tr = WangTrajectory(torch.tensor([0]), W, W, torch.zeros(1, 2), torch.eye(5).expand(2, 5, 5), cfg.sigma2(), cfg)
    out = rw.threshold_outcome(tr)
    assert out["kept"] == [3, 2] and out["prefix"] == [True, False] and out["predicted"] == predicted
    assert out["ok"] == [abs(3 - predicted) <= rw.COUNT_SLACK, False]


def test_minibatch_simulation_finds_the_same_projection():
    cfg = WangConfig(d=6, k=6, invariant=2, predictor="directpred", batch=256, lr=0.05, steps=1500, log_every=500)
    tr = simulate(cfg, seeds=2)
    assert principal_angles(tr.W[-1], tr.invariant_basis()).max() < 5.0


def test_ema_target_lags_and_still_finds_the_projection():
    cfg = WangConfig(d=6, k=6, invariant=2, predictor="trained", ema=0.9, lr=0.05, steps=2000, log_every=1000)
    tr = simulate(cfg, seeds=2)
    assert principal_angles(tr.W[-1], tr.invariant_basis()).max() < 1.0
    assert tr.mode_norms()[-1][:, 2:].max() < 1e-2
    # the EMA target is not the encoder: with ema = 0.9 the first logged loss differs from SimSiam's
    simsiam = simulate(cfg.with_(ema=0.0, steps=1, log_every=1), seeds=2)
    ema = simulate(cfg.with_(steps=1, log_every=1), seeds=2)
    assert torch.equal(simsiam.loss[0], ema.loss[0]) and not torch.equal(simsiam.loss[1], ema.loss[1])


def test_config_errors_name_the_value():
    with pytest.raises(ValueError, match="predictor 'nope'"):
        WangConfig(predictor="nope")
    with pytest.raises(ValueError, match="invariant=40"):
        WangConfig(invariant=40)
    with pytest.raises(ValueError, match="ema=1"):
        WangConfig(ema=1.0)
    with pytest.raises(FloatingPointError, match="diverged"):
        simulate(WangConfig(d=6, k=6, invariant=2, lr=5.0, steps=50, init_std=3.0), seeds=1)


def test_quick_claim_set_writes_verdicts_and_figures(tmp_path, monkeypatch):
    monkeypatch.setattr(rw, "QUICK", rw.QUICK.with_(steps=300, log_every=100))
    monkeypatch.setattr(rw, "QUICK_SWEEP", rw.QUICK_SWEEP.with_(steps=300, log_every=100))
    doc = run_claim_set("wang-2021", tmp_path, seeds=1, quick=True, log=lambda s: None)
    saved = json.loads((tmp_path / "claims.json").read_text())
    assert [c["id"] for c in saved["claims"]] == list(rw.CLAIMS)
    assert saved["holds"] == doc["holds"] == sum(c["holds"] for c in saved["claims"])
    for c in saved["claims"]:
        assert c["figures"] and all((tmp_path / f).stat().st_size > 1000 for f in c["figures"])
    cost = saved["claims"][3]["extra"]["cost"]
    assert set(cost) == {"16", "64"} and all(v["directpred"] > 0 for v in cost.values())
    assert (tmp_path / "report.html").read_text().count("<img") >= 4
