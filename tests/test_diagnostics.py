"""Known-answer tests of the collapse and predictor diagnostics."""

from __future__ import annotations

import math

import pytest
import torch

from stopgrad import diagnostics as dg


@pytest.fixture
def collapsed() -> torch.Tensor:
    g = torch.Generator().manual_seed(0)
    return torch.randn(1, 64, generator=g).expand(256, 64).clone()  # (B, D), every row equal


@pytest.fixture
def gaussian() -> torch.Tensor:
    g = torch.Generator().manual_seed(1)
    return torch.randn(4096, 64, generator=g)  # (B, D) isotropic


def random_spd(d: int, seed: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """F = U diag(s) Uᵀ with distinct eigenvalues; returns (F, U, s)."""
    g = torch.Generator().manual_seed(seed)
    U, _ = torch.linalg.qr(torch.randn(d, d, generator=g, dtype=torch.float64))
    s = torch.linspace(2.0, 0.05, d, dtype=torch.float64)
    return (U * s) @ U.T, U, s


# -------------------------------------------------------------------------------- embeddings
def test_collapsed_embeddings(collapsed):
    assert dg.dim_std(collapsed) == pytest.approx(0.0, abs=1e-6)
    assert dg.effective_rank(collapsed) <= 1 + 1e-3
    assert dg.center_norm(collapsed) == pytest.approx(1.0, abs=1e-5)
    assert dg.residual_norm(collapsed) == pytest.approx(0.0, abs=1e-5)
    assert dg.spectrum(collapsed).max().item() < 1e-10


def test_isotropic_gaussian(gaussian):
    d = gaussian.shape[1]
    assert dg.dim_std(gaussian) == pytest.approx(1 / math.sqrt(d), rel=0.1)
    assert dg.effective_rank(gaussian) > 0.9 * d
    assert dg.center_norm(gaussian) < 0.1
    assert dg.residual_norm(gaussian) == pytest.approx(1.0, abs=0.02)


def test_center_vector_is_mean_of_normalised_rows():
    z = torch.tensor([[3.0, 0.0], [0.0, 2.0]])
    assert torch.allclose(dg.center_vector(z), torch.tensor([0.5, 0.5]))
    assert dg.center_norm(z) == pytest.approx(math.sqrt(0.5))
    assert dg.residual_norm(z) == pytest.approx(math.sqrt(0.5))


def test_spectrum_is_covariance_eigenvalues():
    g = torch.Generator().manual_seed(2)
    z = torch.randn(300, 20, generator=g) * torch.linspace(3, 0.1, 20)
    ref = torch.linalg.eigvalsh(torch.cov(z.T.double())).flip(0).float()
    sp = dg.spectrum(z)
    assert torch.allclose(sp, ref, rtol=1e-3, atol=1e-5)
    assert (sp[:-1] >= sp[1:]).all()


@pytest.mark.parametrize("shape", [(256, 2304), (300, 20), (64, 64)])
def test_the_gram_route_gives_the_singular_values(shape):
    """The spectrum and the effective rank come from the smaller Gram matrix's eigenvalues; they
    must match ``svdvals`` of the centred matrix for wide, tall and square inputs, including
    ReLU features with a large shared mean and a low-rank tail (the backbone's case)."""
    g = torch.Generator().manual_seed(4)
    b, d = shape
    z = (torch.randn(b, 8, generator=g) @ torch.randn(8, d, generator=g) * 3.0
         + 0.01 * torch.randn(b, d, generator=g)).relu() + 2.0
    zc = z - z.mean(dim=0, keepdim=True)
    ref = torch.linalg.svdvals(zc.double())
    sv, tol = dg._centered_svdvals(z)
    assert sv.shape == (min(b, d),) and sv.dtype == torch.float32
    assert torch.allclose(sv.double(), ref, rtol=1e-4, atol=1e-5 * ref[0].item())
    kept = ref[ref > tol]
    p = kept / kept.sum()
    assert dg.effective_rank(z) == pytest.approx(torch.exp(-(p * p.log()).sum()).item(), rel=1e-4)


def test_effective_rank_of_k_equal_directions():
    # k orthogonal directions with equal variance: p_k = 1/k, exp(entropy) = k
    g = torch.Generator().manual_seed(3)
    Q, _ = torch.linalg.qr(torch.randn(32, 32, generator=g))
    z = torch.cat([torch.stack([Q[:, i], -Q[:, i]]) for i in range(5)]) * 3.0  # (10, 32), zero mean
    assert dg.effective_rank(z) == pytest.approx(5.0, rel=1e-4)
    assert dg.effective_rank(z + 7.0) == pytest.approx(5.0, rel=1e-3)  # a shared offset is centred away


def test_embedding_diagnostics_keys(gaussian, collapsed):
    out = dg.embedding_diagnostics([gaussian[:512], gaussian[512:1024]], features=collapsed)
    assert set(out) == {"center_norm", "residual_norm", "dim_std", "dim_std_ref", "effective_rank",
                        "feat_center_norm", "feat_effective_rank"}
    assert all(isinstance(v, float) for v in out.values())
    assert out["dim_std_ref"] == pytest.approx(1 / 8)
    assert out["dim_std"] == pytest.approx(dg.dim_std(gaussian[:512]))
    assert out["feat_center_norm"] == pytest.approx(1.0, abs=1e-5)
    assert dg.embedding_diagnostics([], None) == {}
    half = dg.embedding_diagnostics([gaussian[:256].half()], None)  # low precision is upcast
    assert half["effective_rank"] > 40


# ------------------------------------------------------------------------------- predictor
def test_eigen_alignment_of_function_of_F_is_one():
    F, U, s = random_spd(32, seed=4)
    W = (U * s.sqrt()) @ U.T  # DirectPred: W = U diag(sqrt(s)) Uᵀ
    assert dg.eigen_alignment(W.float(), F.float()) == pytest.approx(1.0, abs=1e-5)
    assert dg.eigen_alignment(W, F, k=5) == pytest.approx(1.0, abs=1e-5)
    Wrand = torch.randn(32, 32, generator=torch.Generator().manual_seed(5))
    assert dg.eigen_alignment(Wrand, F) < 0.4  # ≈ sqrt(2/(π·32)) = 0.14


def test_eigen_alignment_other_functions_and_checks():
    F, U, s = random_spd(16, seed=6)
    assert dg.eigen_alignment(torch.eye(16), F) == pytest.approx(1.0, abs=1e-6)
    assert dg.eigen_alignment(F @ F - 0.5 * F, F) == pytest.approx(1.0, abs=1e-5)  # g(s) with sign change
    rot = torch.linalg.matrix_exp(0.3 * (torch.triu(torch.ones(16, 16, dtype=torch.float64), 1)
                                         - torch.tril(torch.ones(16, 16, dtype=torch.float64), -1)))
    assert dg.eigen_alignment(rot @ F, F) < 0.999  # rotated eigenvectors are no longer aligned
    with pytest.raises(ValueError, match="square"):
        dg.eigen_alignment(torch.ones(3, 4), F)
    with pytest.raises(ValueError, match="k="):
        dg.eigen_alignment(F, F, k=17)


def test_asymmetry():
    g = torch.Generator().manual_seed(7)
    A = torch.randn(24, 24, generator=g)
    assert dg.asymmetry(A + A.T) == pytest.approx(0.0, abs=1e-7)
    # skew: W − Wᵀ = 2W, so the ratio is exactly 2
    assert dg.asymmetry(A - A.T) == pytest.approx(2.0, rel=1e-6)
    assert dg.asymmetry(torch.zeros(3, 3)) == 0.0
    assert dg.asymmetry(A) == pytest.approx((A - A.T).norm().item() / A.norm().item(), rel=1e-6)


def test_diag_and_offdiag_norms():
    W = torch.tensor([[1.0, 2.0, 0.0], [-3.0, 4.0, 1.0], [0.5, 0.0, -2.0]])
    off = math.sqrt(sum(W[i, j].item() ** 2 for i in range(3) for j in range(3) if i != j))
    assert dg.offdiag_norm(W) == pytest.approx(off)
    assert dg.diag_norm(W) == pytest.approx(math.sqrt(1 + 16 + 4))
    assert dg.offdiag_norm(torch.eye(5)) == 0.0
    assert dg.offdiag_norm(W) ** 2 + dg.diag_norm(W) ** 2 == pytest.approx(W.norm().item() ** 2, rel=1e-6)


def test_predictor_diagnostics():
    F, U, s = random_spd(8, seed=8)
    W = (U * s.sqrt()) @ U.T
    out = dg.predictor_diagnostics(W, F)
    assert set(out) == {"asymmetry", "offdiag_norm", "diag_norm", "eigen_alignment"}
    assert out["eigen_alignment"] == pytest.approx(1.0, abs=1e-5)
    assert out["asymmetry"] == pytest.approx(0.0, abs=1e-6)
    assert "eigen_alignment" not in dg.predictor_diagnostics(W)


# ---------------------------------------------------------------------------------- alarms
def test_collapse_alarm(collapsed, gaussian):
    d = 64
    msg = dg.collapse_alarm(dg.embedding_diagnostics([collapsed], None), d)
    assert msg is not None and "dim_std" in msg
    assert dg.collapse_alarm(dg.embedding_diagnostics([gaussian], None), d) is None
    # each criterion alone, keys with or without the loop's "diag/" prefix
    assert "effective_rank" in dg.collapse_alarm({"effective_rank": 1.2}, d)
    assert "center_norm" in dg.collapse_alarm({"diag/center_norm": 0.97}, d)
    assert dg.collapse_alarm({"dim_std": 0.5 / math.sqrt(d), "effective_rank": 10.0, "center_norm": 0.5}, d) is None
    assert dg.collapse_alarm({}, d) is None


def test_uniform_collapse_alarm():
    k = 3000
    msg = dg.uniform_collapse_alarm(math.log(k), k)
    assert msg is not None and "uniform" in msg
    assert dg.uniform_collapse_alarm(0.99 * math.log(k), k) is not None
    assert dg.uniform_collapse_alarm(0.5 * math.log(k), k) is None
    with pytest.raises(ValueError):
        dg.uniform_collapse_alarm(1.0, 1)


def test_dimensional_collapse_alarm_needs_both_signals():
    from stopgrad.diagnostics import collapse_alarm

    d = 256
    assert "dimensional collapse" in collapse_alarm({"center_norm": 0.4, "effective_rank": 12.0, "dim_std": 0.058}, d)
    assert collapse_alarm({"center_norm": 0.4, "effective_rank": 80.0, "dim_std": 0.06}, d) is None
    assert collapse_alarm({"center_norm": 0.1, "effective_rank": 12.0, "dim_std": 0.06}, d) is None


def test_severe_rank_collapse_alarm_without_a_grown_center():
    """Barlow Twins without its off-diagonal term: rank ~2 of 256 at ‖s‖ ~0.25 (no dimensional rule fires)."""
    from stopgrad.diagnostics import collapse_alarm

    d = 256
    msg = collapse_alarm({"center_norm": 0.25, "effective_rank": 2.4, "dim_std": 0.06}, d)
    assert msg is not None and "effective_rank = 2.4" in msg and "= 5" in msg
    assert collapse_alarm({"center_norm": 0.05, "effective_rank": 13.0, "dim_std": 0.06}, d) is None  # healthy Barlow, early
    assert collapse_alarm({"center_norm": 0.24, "effective_rank": 33.0, "dim_std": 0.03}, 1024) is None  # DINO logits
    assert collapse_alarm({"center_norm": 0.1, "effective_rank": 2.0, "dim_std": 0.2}, 64) is None  # 0.02·64 < 2
