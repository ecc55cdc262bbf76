"""Collapse and dynamics diagnostics: pure, method-agnostic tensor functions.

Every function takes detached tensors and returns a tensor or a Python float; none touches a
model. The training loop calls :func:`embedding_diagnostics` and :func:`predictor_diagnostics`
every few steps and logs their keys under ``diag/``; :func:`collapse_alarm` turns the numbers
into a message when a run has collapsed.

Cost: one ``torch.linalg.eigvalsh`` of the ``min(B, D)``-square float64 Gram matrix per embedding
set and one ``torch.linalg.eigh`` of a ``(D, D)`` matrix for the predictor alignment.

Examples:
    >>> z = torch.randn(512, 128)
    >>> d = embedding_diagnostics([z, z], features=None)
    >>> round(d["dim_std"] * 128 ** 0.5, 1)   # ≈ 1 for isotropic Gaussian outputs
    1.0
    >>> collapse_alarm(d, 128) is None
    True
"""

from __future__ import annotations

import math
from collections.abc import Mapping

import torch
import torch.nn.functional as F_

# Complete-collapse thresholds of :func:`collapse_alarm`.
DIM_STD_FRACTION = 0.1  # dim_std < 0.1 / sqrt(d): a tenth of the non-collapsed Gaussian reference
MIN_EFFECTIVE_RANK = 1.5  # all variance in about one direction
MAX_CENTER_NORM = 0.95  # every normalised output points the same way
# Dimensional-collapse thresholds (both must hold): the center vector has grown well past the
# ~0.1 of healthy runs and the variance lives in under a tenth of the dimensions.
DIMENSIONAL_CENTER_NORM = 0.3
DIMENSIONAL_RANK_FRACTION = 0.1
# Severe dimensional collapse, whatever the center vector: effective rank < min(0.02·d, 5) (see
# :func:`collapse_alarm` for the runs behind it).
SEVERE_RANK_FRACTION = 0.02
SEVERE_RANK_CAP = 5.0
UNIFORM_CE_TOL = 0.02  # softmax methods: CE within this fraction of ln K is uniform (no information)
# ... and the uniform rule arms only after the CE stayed below that band for this many checks in a
# row (at least; ``train.alarm_patience`` when larger): a fresh head starts near ln K, on either side.
UNIFORM_ARM_CHECKS = 3


def _as_float32(z: torch.Tensor) -> torch.Tensor:
    if z.dim() != 2:
        raise ValueError(f"expected a (B, D) matrix, got shape {tuple(z.shape)}; flatten the embeddings first")
    return z.detach().to(torch.float32)


def _normalize(z: torch.Tensor) -> torch.Tensor:
    """Rows on the unit sphere, ``z / ||z||`` (Jha et al. 2024: ``z = f / ||f||``)."""
    return F_.normalize(_as_float32(z), dim=1)


# ----------------------------------------------------------------------------- center vector
def center_vector(z: torch.Tensor) -> torch.Tensor:
    """Center vector ``s = E[z]`` of the L2-normalised rows ``z = f / ||f||``.

    Jha, Blaschko, Asano, Tuytelaars 2024, "The common stability mechanism behind most SSL
    approaches", eq. 1. Stable SSL keeps ``||s||`` small; collapse drives it toward 1.

    Args:
        z: embeddings ``(B, D)`` (normalised here).

    Returns:
        ``(D,)`` float32 tensor.
    """
    return _normalize(z).mean(dim=0)  # (D,)


def center_norm(z: torch.Tensor) -> float:
    """``||s||``, the magnitude of the center vector (Jha et al. 2024, eq. 1); in ``[0, 1]``.

    About ``1/sqrt(B)`` for isotropic outputs, exactly 1 when every row points the same way.
    """
    return center_vector(z).norm().item()


def residual_norm(z: torch.Tensor) -> float:
    """Mean residual magnitude ``E ||z_i − s||`` with ``r = z − s`` (Jha et al. 2024, Sec. 3).

    About 1 for isotropic outputs, 0 under complete collapse.
    """
    zn = _normalize(z)  # (B, D)
    return (zn - zn.mean(dim=0)).norm(dim=1).mean().item()


# ------------------------------------------------------------------------------------ dim_std
def dim_std(z: torch.Tensor) -> float:
    """Mean over dimensions of the per-dimension std of the L2-normalised outputs.

    Chen & He 2021, "Exploring Simple Siamese Representation Learning", Sec. 4.1 (Fig. 2,
    middle): the collapse indicator of SimSiam. For outputs that are isotropic Gaussian in ``d``
    dimensions each normalised coordinate has std ``1/sqrt(d)`` (the reference); complete
    collapse gives 0. The std is the population one (no Bessel correction), so one row gives 0.
    """
    return _normalize(z).std(dim=0, correction=0).mean().item()


def dim_std_reference(d: int) -> float:
    """``1/sqrt(d)``: :func:`dim_std` of non-collapsed isotropic Gaussian outputs (Chen & He 2021)."""
    return 1.0 / math.sqrt(d)


# ----------------------------------------------------------------------------------- spectrum
def _centered_svdvals(z: torch.Tensor) -> tuple[torch.Tensor, float]:
    """Singular values of the centred ``z`` (descending, float32) and a numerical-zero tolerance.

    They are the square roots of the eigenvalues of the smaller Gram matrix (``zc zcᵀ`` or
    ``zcᵀ zc``, ``min(B, D)`` square), formed in float64 so that squaring the condition number
    costs nothing above the tolerance below (agreement with ``torch.linalg.svdvals`` is tested).
    For the presets' ``(256, 2304)`` backbone features this took 7 ms against 50 ms for
    ``svdvals`` on one thread (2026-12-07): it is most of a diagnostics check.
    """
    z = _as_float32(z)
    zc = z - z.mean(dim=0, keepdim=True)  # (B, D)
    zd = zc.double()
    gram = zd @ zd.T if zd.shape[0] <= zd.shape[1] else zd.T @ zd  # (m, m), m = min(B, D)
    sv = torch.linalg.eigvalsh(gram).clamp_min(0).sqrt().flip(0).float()
    # the numpy matrix_rank convention, relative to the *uncentred* scale so that rounding noise
    # left after centring identical rows counts as zero
    tol = max(z.shape) * torch.finfo(torch.float32).eps * z.norm().item()
    return sv, tol


def spectrum(z: torch.Tensor) -> torch.Tensor:
    """Eigenvalues of the covariance of ``z``, descending: ``σ_k² / (B − 1)`` for the singular
    values ``σ_k`` of the centred ``(B, D)`` matrix. Length ``min(B, D)``; float32 on ``z``'s device.

    The eigenspectrum of the embeddings (dimensional collapse shows as a tail that drops to 0).
    """
    z = _as_float32(z)
    sv, _ = _centered_svdvals(z)
    return sv.square() / max(z.shape[0] - 1, 1)


def effective_rank(z: torch.Tensor) -> float:
    """RankMe effective rank ``exp(−Σ_k p_k log p_k)`` with ``p_k = σ_k / Σ_j σ_j``.

    Garrido, Balestriero, Najman, LeCun 2023, "RankMe", eq. 1, computed here on the **centred**
    embeddings (``z − mean(z)``) so that a shared offset, which is what the center vector
    measures, does not count as a dimension. Singular values below the numerical tolerance
    ``max(B, D)·eps·||z||_F`` are dropped. Ranges from 1 to ``min(B, D)``; a matrix with no
    variance left (complete collapse: all rows equal) is given the minimum, 1.
    """
    sv, tol = _centered_svdvals(z)
    sv = sv[sv > tol]
    if sv.numel() == 0:
        return 1.0
    p = sv / sv.sum()
    return torch.exp(-(p * p.log()).sum()).item()


# ------------------------------------------------------------------------ predictor dynamics
def _check_square(W: torch.Tensor, name: str = "W") -> torch.Tensor:
    if W.dim() != 2 or W.shape[0] != W.shape[1]:
        raise ValueError(f"{name} must be a square (D, D) matrix, got shape {tuple(W.shape)}")
    return W.detach().to(torch.float32)


def eigen_alignment(W: torch.Tensor, F: torch.Tensor, k: int | None = None) -> float:
    """How well the eigenvectors of the correlation ``F`` are eigenvectors of the predictor ``W``.

    DirectPred (Tian, Chen & Ganguli, ICML 2021, Sec. 4 and Fig. 3): during training the
    eigenspaces of a linear predictor ``W_p`` and of the correlation ``F = E[f fᵀ]`` align, so
    that ``W_p = U g(S) Uᵀ`` for ``F = U S Uᵀ``. Measured here as

        alignment = (1/k) Σ_{j ≤ k} |cos(W u_j, u_j)| = (1/k) Σ_j |u_jᵀ W u_j| / ||W u_j||

    over the top-``k`` eigenvectors ``u_j`` of ``F`` (default: all with an eigenvalue above
    ``1e-6·s_max``, i.e. the range of ``F``; the null space has no preferred basis).

    It equals 1 exactly when every ``u_j`` is an eigenvector of ``W``, which holds whenever ``W``
    is a function of ``F`` (``W u_j = g(s_j) u_j``), and is about ``sqrt(2/(π D))`` for a random
    Gaussian ``W``. It needs no eigen-decomposition of ``W``, so it is defined for asymmetric
    heads too. A ``u_j`` that ``W`` maps to (numerically) zero is an eigenvector with eigenvalue 0
    and counts as aligned.

    Args:
        W: predictor ``(D, D)``, acting as ``p = W f``.
        F: symmetric correlation ``(D, D)``.
        k: number of top eigenvectors of ``F`` to average over.
    """
    W, F = _check_square(W, "W"), _check_square(F, "F")
    if W.shape != F.shape:
        raise ValueError(f"W {tuple(W.shape)} and F {tuple(F.shape)} must have the same shape")
    s, U = torch.linalg.eigh((F + F.T) / 2)  # ascending
    s, U = s.flip(0), U.flip(1)  # descending; columns u_j
    if k is None:
        k = max(1, int((s > 1e-6 * s[0].abs().clamp_min(1e-30)).sum()))
    if not 1 <= k <= len(s):
        raise ValueError(f"k={k} must be in [1, {len(s)}]")
    U = U[:, :k]  # (D, k)
    WU = W @ U  # (D, k)
    norms = WU.norm(dim=0)  # (k,)
    cos = (U * WU).sum(dim=0).abs() / norms.clamp_min(1e-30)
    null = norms <= 1e-6 * max(W.norm().item(), 1e-30)
    cos = torch.where(null, torch.ones_like(cos), cos.clamp(max=1.0))
    return cos.mean().item()


def asymmetry(W: torch.Tensor) -> float:
    """``||W − Wᵀ||_F / ||W||_F``: 0 for a symmetric, 2 for a skew-symmetric matrix, about
    ``sqrt(2)`` for a random Gaussian one (0 for ``W = 0``).

    Wen & Li 2022, "The Mechanism of Prediction Head in Non-contrastive SSL": a trained head can
    be strongly asymmetric.
    """
    W = _check_square(W)
    n = W.norm().item()
    return (W - W.T).norm().item() / n if n > 0 else 0.0


def offdiag_norm(W: torch.Tensor) -> float:
    """Frobenius norm of ``W`` without its diagonal, ``||W − diag(W)||_F``.

    Wen & Li 2022: with the head initialised to the identity, the off-diagonal entries rise
    (substitution, acceleration phases) and then fall back toward zero.
    """
    W = _check_square(W)
    return (W - torch.diag(torch.diagonal(W))).norm().item()


def diag_norm(W: torch.Tensor) -> float:
    """Euclidean norm of the diagonal of ``W``, ``||diag(W)||_2`` (Wen & Li 2022)."""
    return torch.diagonal(_check_square(W)).norm().item()


# --------------------------------------------------------------------------------------- alarms
def _get(metrics: Mapping[str, float], key: str) -> float | None:
    for k in (key, f"diag/{key}"):
        v = metrics.get(k)
        if v is not None and math.isfinite(float(v)):
            return float(v)
    return None


def collapse_alarm(metrics: Mapping[str, float], d: int, n: int | None = None) -> str | None:
    """A message when the embeddings have collapsed, completely or dimensionally, else ``None``.

    Fires on the first of (keys as returned by :func:`embedding_diagnostics`, with or without
    the ``diag/`` prefix; missing keys are not checked):

    - ``dim_std < 0.1/sqrt(d)``: a tenth of the isotropic reference of Chen & He 2021, Sec. 4.1
      (SimSiam's collapsed runs sit at 0; healthy ones stay near ``1/sqrt(d)``);
    - ``effective_rank < 1.5``: the variance lives in about one direction (RankMe);
    - ``center_norm > 0.95``: all outputs point the same way (Jha et al. 2024);
    - dimensional collapse: ``center_norm > 0.3`` and ``effective_rank < 0.1·d`` together. A
      projector that ends in BatchNorm cannot reach complete collapse (BN restores per-dimension
      variance), so collapse there shows as a grown center vector and a few remaining directions;
      on Fashion-MNIST, SimSiam without predictor or stop-gradient reached 0.37-0.39 and rank
      14-15 of 256 within 2 epochs, while the healthy run stayed at 0.1 and rank 81;
    - severe dimensional collapse: ``effective_rank < min(0.02·d, 5)`` whatever ``center_norm``
      (a BN-ended projector can keep ‖s‖ small while its variance lives in two directions:
      Barlow Twins without the off-diagonal term ends at rank 2.0-2.4 of 256 at ‖s‖ 0.18-0.26,
      where healthy runs of every method on Fashion-MNIST stay at 13 or more); skipped when the
      batch has ``n <= 4·`` that threshold rows, whose rank cannot exceed ``n - 1`` anyway.

    Args:
        metrics: diagnostic values.
        d: dimension of the embeddings the metrics were computed on.
        n: rows (batch size) they were computed on, when known.
    """
    dstd, threshold = _get(metrics, "dim_std"), DIM_STD_FRACTION / math.sqrt(d)
    if dstd is not None and dstd < threshold:
        return (f"complete collapse: dim_std = {dstd:.3g} < {threshold:.3g} "
                f"(0.1/sqrt(d), d = {d}; non-collapsed outputs give {1 / math.sqrt(d):.3g})")
    rank = _get(metrics, "effective_rank")
    if rank is not None and rank < MIN_EFFECTIVE_RANK:
        return f"complete collapse: effective_rank = {rank:.3g} < {MIN_EFFECTIVE_RANK}"
    cn = _get(metrics, "center_norm")
    if cn is not None and cn > MAX_CENTER_NORM:
        return f"complete collapse: center_norm = {cn:.3g} > {MAX_CENTER_NORM} (all outputs point one way)"
    if (cn is not None and rank is not None and cn > DIMENSIONAL_CENTER_NORM
            and rank < DIMENSIONAL_RANK_FRACTION * d):
        return (f"dimensional collapse: center_norm = {cn:.3g} > {DIMENSIONAL_CENTER_NORM} and "
                f"effective_rank = {rank:.3g} < {DIMENSIONAL_RANK_FRACTION}·d = {DIMENSIONAL_RANK_FRACTION * d:.3g}")
    severe = min(SEVERE_RANK_FRACTION * d, SEVERE_RANK_CAP)
    if rank is not None and rank < severe and (n is None or n > 4 * severe):
        return (f"dimensional collapse: effective_rank = {rank:.3g} < min({SEVERE_RANK_FRACTION}·d, "
                f"{SEVERE_RANK_CAP:g}) = {severe:.3g} (d = {d}): the variance lives in a few directions")
    return None


def below_uniform_band(ce: float, k: int, tol: float = UNIFORM_CE_TOL) -> bool:
    """Whether a softmax method's cross-entropy lies below the uniform band ``ln K ± tol·ln K``: it
    carries information. The monitor arms :func:`uniform_collapse_alarm` only after some checks of this."""
    return ce < (1 - tol) * math.log(k)


def uniform_collapse_alarm(ce: float, k: int, tol: float = UNIFORM_CE_TOL) -> str | None:
    """A message when a softmax method's cross-entropy sits at the uniform value ``ln K``.

    For SwAV/DINO-style losses over ``K`` prototypes, predicting the uniform distribution gives
    cross-entropy ``ln K``: the outputs carry no information (uniform collapse). Fires when
    ``|ce − ln K| ≤ tol·ln K``.
    """
    if k < 2:
        raise ValueError(f"k={k} prototypes: need at least 2")
    ln_k = math.log(k)
    if abs(ce - ln_k) <= tol * ln_k:
        return f"uniform collapse: cross-entropy {ce:.4g} is within {tol:g}·ln K of ln K = {ln_k:.4g} (K = {k})"
    return None


# --------------------------------------------------------------------------------- entry points
def embedding_diagnostics(embeddings: list[torch.Tensor], features: torch.Tensor | None) -> dict[str, float]:
    """Collapse diagnostics of one training step, as flat float values (the loop adds ``diag/``).

    On the first view's projector output ``embeddings[0]`` ``(B, D)``: ``center_norm``,
    ``residual_norm``, ``dim_std``, ``dim_std_ref`` (``1/sqrt(D)``), ``effective_rank``; on the
    backbone ``features`` ``(B, F)`` when given: ``feat_center_norm``, ``feat_effective_rank``.
    Everything is computed in float32 on detached tensors.
    """
    out: dict[str, float] = {}
    if embeddings:
        z = _as_float32(embeddings[0])  # (B, D)
        zn = F_.normalize(z, dim=1)
        s = zn.mean(dim=0)
        out["center_norm"] = s.norm().item()
        out["residual_norm"] = (zn - s).norm(dim=1).mean().item()
        out["dim_std"] = zn.std(dim=0, correction=0).mean().item()
        out["dim_std_ref"] = dim_std_reference(z.shape[1])
        out["effective_rank"] = effective_rank(z)
    if features is not None:
        f = _as_float32(features.flatten(1))  # (B, F)
        out["feat_center_norm"] = center_norm(f)
        out["feat_effective_rank"] = effective_rank(f)
    return out


def predictor_diagnostics(W: torch.Tensor, F: torch.Tensor | None = None) -> dict[str, float]:
    """Dynamics of a linear predictor ``W`` ``(D, D)``: ``asymmetry``, ``offdiag_norm``,
    ``diag_norm`` (Wen & Li 2022) and, given the correlation ``F``, ``eigen_alignment``
    (DirectPred, Tian et al. 2021)."""
    out = {"asymmetry": asymmetry(W), "offdiag_norm": offdiag_norm(W), "diag_norm": diag_norm(W)}
    if F is not None:
        out["eigen_alignment"] = eigen_alignment(W, F)
    return out
