"""Closed-form and linear predictors against numpy oracles, the fixed diagonal under optimizers,
the correlation tracker, config validation and the directpred/directcopy/directset methods."""

import numpy as np
import pytest
import torch

from stopgrad.backbones import build_backbone
from stopgrad.config import ConfigError, resolve
from stopgrad.methods import get_method
from stopgrad.methods.siamese import CLOSED_FORMS, LINEAR_HEADS, PREDICTORS, SiameseConfig
from stopgrad.optim import build_optimizer
from stopgrad.predictors import (ClosedFormPredictor, CorrelationTracker, FixedDiagonalPredictor,
                                 LinearPredictor, SymmetricPredictor, directcopy_weight, directpred_weight,
                                 directset_weight, top_eigenvalue)

SMALL = {"heads": "small", "proj_hidden": 32, "proj_dim": 16}


def psd(d=24, seed=0, decay=0.8) -> torch.Tensor:
    """A random correlation-like PSD matrix with a geometric spectrum (a clear top eigenvalue)."""
    g = np.random.default_rng(seed)
    q, _ = np.linalg.qr(g.standard_normal((d, d)))
    s = 3.0 * decay ** np.arange(d)
    return torch.tensor((q * s) @ q.T, dtype=torch.float32)


def oracle(F: torch.Tensor, g) -> np.ndarray:
    """``U diag(g(s)) Uᵀ`` by numpy's float64 ``eigh``."""
    s, U = np.linalg.eigh(F.double().numpy())
    return (U * g(s)) @ U.T


def directset_oracle(F, alpha, eps):
    return oracle(F, lambda s: np.maximum((np.maximum(s, 0) / s.max()) ** alpha + eps, 1e-4))


# ------------------------------------------------------------------------------ closed forms
def test_directpred_matches_numpy_eigh_oracle():
    F = psd()
    expected = oracle(F, lambda s: np.maximum(np.sqrt(np.maximum(s, 0) / s.max()) + 0.01, 1e-4))
    np.testing.assert_allclose(directpred_weight(F, eps=0.01).numpy(), expected, atol=2e-5)


def test_directpred_clamps_negative_eigenvalues_and_small_results():
    F = psd(seed=1)
    s, U = torch.linalg.eigh(F.double())
    s[:3] = -0.5  # an indefinite F: negative eigenvalues count as 0
    F = ((U * s) @ U.T).float()
    W = directpred_weight(F, eps=-0.001)  # reference allows eps < 0: then the clamp at 1e-4 acts
    expected = oracle(F, lambda s: np.maximum(np.sqrt(np.maximum(s, 0) / s.max()) - 0.001, 1e-4))
    np.testing.assert_allclose(W.numpy(), expected, atol=2e-5)
    assert torch.linalg.eigvalsh(W.double()).min() >= 1e-4 - 1e-6


@pytest.mark.parametrize("alpha", [0.25, 0.5, 1.0, 2.0])
def test_directset_matches_numpy_eigh_oracle(alpha):
    F = psd(seed=2)
    np.testing.assert_allclose(directset_weight(F, alpha, 0.1).numpy(), directset_oracle(F, alpha, 0.1), atol=2e-5)


def test_directset_half_is_directpred():
    F = psd(seed=3)
    assert torch.allclose(directset_weight(F, 0.5, 0.01), directpred_weight(F, 0.01), atol=1e-6)


def test_unnormalised_directset_is_the_matrix_power():
    F = psd(seed=7)
    W = directset_weight(F, 0.5, 0.0, min_value=0.0, normalize=False)
    np.testing.assert_allclose((W @ W).numpy(), F.numpy(), atol=2e-4)  # F^(1/2) squared is F
    assert torch.allclose(directset_weight(F, 1.0, 0.1, normalize=False), F + 0.1 * torch.eye(24), atol=2e-5)


def test_closed_forms_of_a_batch_equal_each_matrix_alone():
    Fs = torch.stack([psd(seed=k) * (k + 1) for k in range(3)])  # different scales per matrix
    for fn in (lambda F: directset_weight(F, 0.5, 0.01), lambda F: directset_weight(F, 1.0, 0.0, normalize=False),
               lambda F: directcopy_weight(F, 0.25, "spectral"), lambda F: directcopy_weight(F, 0.25, "frobenius"),
               lambda F: directcopy_weight(F, 0.25, "none")):
        batched = fn(Fs)
        assert batched.shape == Fs.shape
        for k in range(3):
            assert torch.allclose(batched[k], fn(Fs[k]), atol=1e-5)
    assert torch.allclose(top_eigenvalue(Fs), torch.stack([top_eigenvalue(F) for F in Fs]))
    with pytest.raises(ValueError, match="square"):
        directset_weight(torch.zeros(3, 4), 0.5, 0.01)


def test_closed_forms_of_zero_correlation_are_eps_identity():
    Z = torch.zeros(6, 6)
    assert torch.allclose(directpred_weight(Z, 0.01), 0.01 * torch.eye(6), atol=1e-7)
    for norm in ("spectral", "frobenius", "none"):
        assert torch.equal(directcopy_weight(Z, 0.25, norm), 0.25 * torch.eye(6))


def test_directcopy_forms_match_their_formulas():
    F, eps, I = psd(seed=4), 0.25, torch.eye(24)
    assert torch.allclose(directcopy_weight(F, eps, "none"), F + eps * I)
    fro = np.linalg.norm(F.double().numpy())
    np.testing.assert_allclose(directcopy_weight(F, eps, "frobenius").numpy(), F.numpy() / fro + eps * np.eye(24),
                               atol=1e-6)


def test_directcopy_equals_directset_alpha_one_up_to_normalisation():
    F, eps = psd(seed=5), 0.25
    s_max = np.linalg.eigvalsh(F.double().numpy()).max()
    target = directset_weight(F, 1.0, eps)
    # exactly DirectSet(1) once F is divided by its top eigenvalue ...
    assert torch.allclose(directcopy_weight(F / float(s_max), eps, "none"), target, atol=1e-5)
    # ... which the spectral form estimates: converged power iteration gives the same W,
    assert torch.allclose(directcopy_weight(F, eps, "spectral", power_iters=200), target, atol=1e-5)
    # and the default 5 iterations are close on a spectrum with a gap (s2/s1 = 0.8 here)
    assert (directcopy_weight(F, eps, "spectral", power_iters=5) - target).abs().max() < 0.05
    # Frobenius: the same matrix up to the scalar ||F||_F / s_max
    fro = torch.linalg.matrix_norm(F).item()
    scaled = (directcopy_weight(F, eps, "frobenius") - eps * torch.eye(24)) * fro / s_max + eps * torch.eye(24)
    assert torch.allclose(scaled, target, atol=1e-5)


def test_top_eigenvalue_is_a_converging_lower_bound():
    F = psd(seed=6)
    s_max = float(np.linalg.eigvalsh(F.double().numpy()).max())
    errs = [s_max - top_eigenvalue(F, k).item() for k in (1, 5, 50)]
    assert all(e >= -1e-5 for e in errs) and errs[0] >= errs[1] >= errs[2] and errs[2] < 1e-5


# ---------------------------------------------------------------------------------- tracker
def direct_ema(batches, rho, zero_mean):
    """The EMA computed directly in numpy (first update initialises, as in the reference)."""
    F = m = None
    for views in batches:
        z = np.concatenate([v.double().numpy() for v in views])
        c, mu = z.T @ z / len(z), z.mean(0)
        F, m = (c, mu) if F is None else (rho * F + (1 - rho) * c, rho * m + (1 - rho) * mu)
    return F - np.outer(m, m) if zero_mean else F


@pytest.mark.parametrize("zero_mean", [False, True])
def test_correlation_tracker_matches_direct_computation(zero_mean):
    torch.manual_seed(0)
    tracker = CorrelationTracker(8, rho=0.3, zero_mean=zero_mean)
    batches = [[torch.randn(16, 8) + 1.0, torch.randn(16, 8) + 1.0] for _ in range(5)]
    for views in batches:
        tracker.update(views)
    assert tracker.count.item() == 5
    np.testing.assert_allclose(tracker.correlation().numpy(), direct_ema(batches, 0.3, zero_mean), rtol=1e-5,
                               atol=1e-5)


def test_correlation_tracker_is_detached_float32():
    tracker = CorrelationTracker(4, rho=0.5)
    z = torch.randn(8, 4, dtype=torch.float64, requires_grad=True)
    tracker.update([z * 2, z.to(torch.bfloat16)])
    F = tracker.correlation()
    assert F.dtype == torch.float32 and not F.requires_grad and not tracker.F.requires_grad
    with pytest.raises(ValueError, match="rho=1"):
        CorrelationTracker(4, rho=1.0)


# ------------------------------------------------------------------------------ linear heads
@pytest.mark.parametrize("head", [LinearPredictor(12, "identity"), FixedDiagonalPredictor(12),
                                  SymmetricPredictor(12, "identity"), ClosedFormPredictor(12),
                                  ClosedFormPredictor(12, trainable=True)])
def test_identity_heads_are_the_identity_at_step_zero(head):
    z = torch.randn(5, 12)
    assert torch.equal(head.matrix().detach(), torch.eye(12))
    assert torch.equal(head(z), z)


def test_fixed_diagonal_is_bit_for_bit_unchanged_under_momentum_and_weight_decay():
    torch.manual_seed(0)
    head = FixedDiagonalPredictor(10, diag_value=1.0)
    assert [n for n, _ in head.named_parameters()] == ["offdiag"]
    assert head.offdiag.shape == (10, 9)  # D·(D − 1) values: the diagonal is not a parameter
    diag0 = torch.diagonal(head.matrix()).detach().clone()
    opts = [torch.optim.SGD(head.parameters(), lr=0.1, momentum=0.9, weight_decay=0.05, nesterov=True),
            torch.optim.AdamW(head.parameters(), lr=0.01, weight_decay=0.1)]
    target = torch.randn(10, 10)
    for opt in opts:
        for _ in range(200):
            z = torch.randn(32, 10)
            loss = (head(z) - z @ target.T).square().mean()
            opt.zero_grad()
            loss.backward()
            opt.step()
    W = head.matrix().detach()
    assert torch.equal(torch.diagonal(W), diag0)  # bit-for-bit
    assert torch.equal(head.diag, torch.ones(10))
    off = W - torch.diag(torch.diagonal(W))
    assert off.abs().max() > 0.1  # the off-diagonal entries did train


def test_fixed_diagonal_survives_the_methods_optimizer_groups():
    m = make("directpred", predictor="fixed-diagonal", pred_weight_decay=0.1, pred_lr_mult=10.0)
    from stopgrad.config import OptimConfig

    opt = build_optimizer(m.param_groups(), OptimConfig(lr=0.1, momentum=0.9, weight_decay=5e-4), 0.1)
    for step in range(5):
        out = m(views(), step)
        opt.zero_grad()
        out.loss.backward()
        opt.step()
        m.after_step(step, 5)
    W, F = m.predictor_matrices()
    assert torch.equal(torch.diagonal(W), torch.ones(16)) and F is None
    assert (W - torch.eye(16)).abs().max() > 0


def test_fixed_diagonal_scatter_layout_matches_rows():
    head = FixedDiagonalPredictor(4, diag_value=2.0)
    with torch.no_grad():
        head.offdiag.copy_(torch.arange(12.0).view(4, 3) + 1)
    expected = torch.tensor([[2, 1, 2, 3], [4, 2, 5, 6], [7, 8, 2, 9], [10, 11, 12, 2]], dtype=torch.float32)
    assert torch.equal(head.matrix(), expected)


def test_symmetric_predictor_stays_symmetric_under_training():
    torch.manual_seed(0)
    head = SymmetricPredictor(6, init="random")
    opt = torch.optim.SGD(head.parameters(), lr=0.1, momentum=0.9)
    for _ in range(20):
        z = torch.randn(16, 6)
        loss = (head(z) - z.flip(1)).square().mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
    W = head.matrix().detach()
    assert torch.equal(W, W.T)


def test_closed_form_predictor_buffer_or_parameter():
    frozen, trained = ClosedFormPredictor(4), ClosedFormPredictor(4, trainable=True)
    assert list(frozen.parameters()) == [] and "weight" in dict(frozen.named_buffers())
    assert [n for n, _ in trained.named_parameters()] == ["weight"]
    frozen.set_weight(2 * torch.eye(4))
    assert torch.equal(frozen(torch.ones(1, 4)), 2 * torch.ones(1, 4))
    with pytest.raises(ValueError, match="shape"):
        frozen.set_weight(torch.eye(3))


# ---------------------------------------------------------------------------------- methods
def make(name, **cfg):
    torch.manual_seed(0)
    backbone, dim = build_backbone("convnet", in_channels=1, width=0.25)
    cls = get_method(name)
    return cls(backbone, dim, cls.Config(**{**SMALL, **cfg}))


def views(b=8):
    return [torch.randn(b, 1, 28, 28), torch.randn(b, 1, 28, 28)]


@pytest.mark.parametrize("name", ["directpred", "directcopy", "directset"])
@pytest.mark.parametrize("ema", [(0.996, 0.996), (0.0, 0.0)])
def test_new_methods_train_with_and_without_ema(name, ema):
    m = make(name, ema=ema)
    assert (m.target_backbone is not None) == (ema != (0.0, 0.0))
    assert isinstance(m.predictor, ClosedFormPredictor) and list(m.predictor.parameters()) == []
    assert {g["name"] for g in m.param_groups()} == {"encoder"}  # W is not trained between overwrites
    out = m(views(), 0)
    out.loss.backward()
    assert torch.isfinite(out.loss) and any(p.grad is not None for p in m.backbone.parameters())
    assert torch.equal(m.predictor.weight, torch.eye(16))  # identity until the first after_step
    m.after_step(0, 10)
    W, F = m.predictor_matrices()
    np.testing.assert_allclose(F.numpy(), direct_ema([out.embeddings], 0.3, False), rtol=1e-5, atol=1e-6)
    assert torch.allclose(W, m.closed_form_weight()) and not torch.equal(W, torch.eye(16))
    assert torch.allclose(W, W.T, atol=1e-6)
    out2 = m(views(), 1)  # the new W is used
    assert torch.isfinite(out2.loss)


def test_closed_form_weight_is_the_configured_form():
    for name, fn in [("directpred", lambda F: directpred_weight(F, 0.01)),
                     ("directset", lambda F: directset_weight(F, 1.0, 0.25)),
                     ("directcopy", lambda F: directcopy_weight(F, 0.25, "spectral", 5))]:
        m = make(name)
        m(views(16), 0)
        m.after_step(0, 10)
        assert torch.allclose(m.predictor.weight, fn(m.tracker.correlation()), atol=1e-6), name


def test_pred_freq_overwrites_every_k_steps():
    m = make("directpred", pred_freq=3, ema=(0.0, 0.0))
    weights = []
    for step in range(4):
        m(views(), step)
        m.after_step(step, 10)
        weights.append(m.predictor.weight.clone())
    assert m.tracker.count.item() == 4  # the tracker updates every step
    assert not torch.equal(weights[0], torch.eye(16))  # overwritten at step 0
    assert torch.equal(weights[1], weights[0]) and torch.equal(weights[2], weights[0])
    assert not torch.equal(weights[3], weights[0])  # and at step 3


def test_pred_train_between_makes_w_a_trained_parameter():
    m = make("directcopy", pred_train_between=True, pred_freq=2)
    groups = {g["name"]: g for g in m.param_groups()}
    assert groups["predictor"]["params"] == [m.predictor.weight]
    m(views(), 0).loss.backward()
    assert m.predictor.weight.grad is not None


def test_predictor_matrices_for_each_head():
    assert make("directpred", predictor="mlp").predictor_matrices() is None
    assert make("directpred", predictor="none").predictor_matrices() is None
    W, F = make("directpred", predictor="identity").predictor_matrices()
    assert torch.equal(W, torch.eye(16)) and F is None
    m = make("directpred", predictor="symmetric", track_correlation=True)
    m(views(), 0)
    m.after_step(0, 10)
    W, F = m.predictor_matrices()
    assert F is not None and F.shape == (16, 16) and torch.allclose(W, W.T)
    m = make("directpred", predictor="frozen-identity", track_correlation=True)
    m(views(), 0)
    m.after_step(0, 10)
    W, F = m.predictor_matrices()
    assert torch.equal(W, torch.eye(16)) and F is not None  # frozen: never overwritten


@pytest.mark.parametrize("predictor", PREDICTORS)
def test_every_predictor_option_builds_and_runs(predictor):
    m = make("byol", predictor=predictor, ema=(0.0, 0.0))
    out = m(views(), 0)
    out.loss.backward()
    m.after_step(0, 10)
    assert torch.isfinite(out.loss)
    assert (m.predictor_matrices() is not None) == (predictor in LINEAR_HEADS)
    assert (m.tracker is not None) == (predictor in CLOSED_FORMS)


def test_simsiam_and_byol_defaults_are_unchanged():
    for name in ("simsiam", "byol"):
        cfg = get_method(name).Config()
        assert cfg.predictor == "mlp" and not cfg.uses_tracker
        m = make(name)
        assert m.tracker is None and m.predictor_matrices() is None


def test_presets_resolve():
    for name in ("directpred", "directcopy", "directset"):
        cfg = resolve(f"fashion-mnist/{name}")
        assert cfg.method_name == name and cfg.method.heads == "small" and cfg.method.predictor == name
    assert resolve("fashion-mnist/directpred").method.eps == 0.01
    assert resolve("fashion-mnist/directcopy").method.eps == 0.25
    # switching the form picks that form's default eps
    assert resolve("fashion-mnist/directpred", ["method.predictor=directcopy"]).method.eps == 0.25


@pytest.mark.parametrize("override, message", [
    ("method.predictor=direct-pred", "predictor='direct-pred'"),
    ("method.copy_norm=l2", "copy_norm='l2'"),
    ("method.corr_rho=1.0", "corr_rho=1.0"),
    ("method.pred_freq=0", "pred_freq=0"),
    ("method.alpha=0", "alpha=0"),
    ("method.power_iters=0", "power_iters=0"),
    ("method.pred_init=orthogonal", "pred_init='orthogonal'"),
    ("method.pred_eps=-0.1", "pred_eps=-0.1"),  # directcopy: no eigenvalue clamp
])
def test_validation_errors_name_the_bad_value(override, message):
    with pytest.raises(ConfigError, match=message.replace("(", r"\(")):
        resolve("fashion-mnist/directcopy", [override])


def test_validation_of_options_that_need_a_linear_head():
    with pytest.raises(ValueError, match="pred_train_between=True needs a closed-form"):
        SiameseConfig(predictor="mlp", pred_train_between=True).validate()
    with pytest.raises(ValueError, match="track_correlation=True needs a linear"):
        SiameseConfig(predictor="mlp", track_correlation=True).validate()
    SiameseConfig(predictor="directpred", pred_eps=-0.001).validate()  # clamped forms allow eps < 0
