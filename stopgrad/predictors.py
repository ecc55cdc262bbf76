"""Linear and closed-form predictors: correlation EMA, DirectPred, DirectCopy, DirectSet(alpha),
identity-initialised, fixed-diagonal and symmetric heads.

Every head here is a linear map ``p = W z`` on the projector output ``z`` (batched as
``z @ Wᵀ``) and exposes ``matrix()``, the ``(D, D)`` matrix ``W``, so the training loop can log the
predictor's dynamics (:func:`stopgrad.diagnostics.predictor_diagnostics`).

The closed forms set ``W`` from an EMA of the correlation ``F = E[f fᵀ]`` of the online projector
outputs ``f`` (:class:`CorrelationTracker`); with ``F = U diag(s) Uᵀ`` and ``ŝ = max(s, 0)/max(s)``:

=========================  =====================================================  ==============
form                        ``W``                                                  source
=========================  =====================================================  ==============
DirectPred                  ``U diag(sqrt(ŝ) + eps) Uᵀ``, clamped at 1e-4         Tian et al. 2021
DirectSet(alpha)            ``U diag(ŝ^alpha + eps) Uᵀ``, clamped at 1e-4         Wang et al. 2021
DirectCopy                  ``F / norm(F) + eps·I`` (no eigen-decomposition)       Wang et al. 2021
=========================  =====================================================  ==============

DirectSet(1/2) is DirectPred; DirectCopy with ``norm="spectral"`` (``norm(F) = s_max``) is
DirectSet(1) up to the accuracy of the power iteration that estimates ``s_max``.

References:
    Tian, Chen, Ganguli, "Understanding self-supervised learning dynamics without contrastive
    pairs", ICML 2021 (DirectPred; reference code facebookresearch/luckmatters, ``ssl/``).
    Wang, Chen, Du, Tian, "Towards Demystifying Representation Learning with Non-contrastive
    Self-supervision", arXiv 2110.04947, 2021 (DirectCopy, DirectSet(alpha)).
    Wen & Li, "The Mechanism of Prediction Head in Non-contrastive Self-supervised Learning",
    NeurIPS 2022 (identity-initialised head, fixed diagonal).

Examples:
    >>> tracker = CorrelationTracker(128, rho=0.3)
    >>> tracker.update([torch.randn(256, 128), torch.randn(256, 128)])
    >>> head = ClosedFormPredictor(128)
    >>> head.set_weight(directpred_weight(tracker.correlation(), eps=0.01))
    >>> head(torch.randn(4, 128)).shape
    torch.Size([4, 128])
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F_
from torch import nn

from stopgrad import distributed as dist

COPY_NORMS = ("spectral", "frobenius", "none")
MIN_EIGENVALUE = 1e-4  # DirectPred reference: eigenvalues of W clamped at 1e-4 after adding eps


# ------------------------------------------------------------------------------- correlation
class CorrelationTracker(nn.Module):
    """EMA of the correlation ``F ← rho·F + (1 − rho)·mean_i(f_i f_iᵀ)`` of projector outputs.

    DirectPred (Tian et al. 2021: ``F̂ = ρF̂ + (1 − ρ)E_B[ffᵀ]``; reference rho = 0.3,
    updated every step). The batch mean runs over the concatenated (detached, float32) outputs of
    all views. As in the reference code (``Accumulator`` in ``byol_trainer.py``) the first update
    sets ``F`` to the first batch's correlation instead of blending it with zeros. The batch
    statistics are averaged over processes under DDP, so every rank holds the same ``F``.

    With ``zero_mean=True`` :meth:`correlation` returns the covariance form ``F − m mᵀ`` where
    ``m`` is the EMA (same ``rho``) of the batch means (reference option ``dyn_zero_mean``).

    Args:
        dim: width ``D`` of the projector outputs.
        rho: EMA decay in ``[0, 1)`` (0: the last batch only).
        zero_mean: subtract the outer product of the mean (covariance instead of correlation).

    Buffers: ``F`` ``(D, D)``, ``mean`` ``(D,)`` (both float32), ``count`` (updates so far).
    """

    def __init__(self, dim: int, rho: float = 0.3, zero_mean: bool = False) -> None:
        super().__init__()
        if not 0.0 <= rho < 1.0:
            raise ValueError(f"rho={rho}: must lie in [0, 1)")
        self.dim, self.rho, self.zero_mean = dim, rho, zero_mean
        self.register_buffer("F", torch.zeros(dim, dim))
        self.register_buffer("mean", torch.zeros(dim))
        self.register_buffer("count", torch.zeros((), dtype=torch.long))

    @torch.no_grad()
    def update(self, embeddings: list[torch.Tensor]) -> None:
        """Fold one step's projector outputs ``[(B, D), ...]`` (one per view) into the EMA."""
        z = torch.cat([e.detach().to(torch.float32) for e in embeddings])  # (V·B, D)
        if z.dim() != 2 or z.shape[1] != self.dim:
            raise ValueError(f"expected (B, {self.dim}) embeddings, got {tuple(z.shape)}")
        corr = dist.all_reduce_mean(z.T @ z / z.shape[0])  # (D, D)
        mean = dist.all_reduce_mean(z.mean(dim=0))  # (D,)
        # decay rho, or 0 on the first update (no host sync: the branch is a tensor op)
        decay = torch.where(self.count > 0, self.rho, 0.0).to(self.F.dtype)
        self.F.mul_(decay).add_(corr * (1 - decay))
        self.mean.mul_(decay).add_(mean * (1 - decay))
        self.count += 1

    def correlation(self) -> torch.Tensor:
        """The tracked ``F`` ``(D, D)`` (a copy), minus ``m mᵀ`` in the zero-mean form."""
        if self.zero_mean:
            return self.F - torch.outer(self.mean, self.mean)
        return self.F.clone()


# ------------------------------------------------------------------------------ closed forms
def _check_square(F: torch.Tensor) -> torch.Tensor:
    if F.dim() < 2 or F.shape[-1] != F.shape[-2]:
        raise ValueError(f"F must be a square (D, D) matrix or a batch (..., D, D), got shape {tuple(F.shape)}")
    return F.detach().to(torch.float32)


def directset_weight(F: torch.Tensor, alpha: float, eps: float,
                     min_value: float = MIN_EIGENVALUE, normalize: bool = True) -> torch.Tensor:
    """DirectSet(alpha): ``W = U diag(max((s⁺/s_max)^alpha + eps, min_value)) Uᵀ``.

    Wang, Chen, Du, Tian 2021 (arXiv 2110.04947): the family between DirectPred (alpha = 1/2)
    and DirectCopy (alpha = 1). ``F = U diag(s) Uᵀ`` by ``torch.linalg.eigh``; negative
    eigenvalues are clamped to 0 and the result at ``min_value`` as in the DirectPred reference
    (``balance_type=boost_scale`` with ``dyn_convert = 1/alpha``). A correlation with no positive
    eigenvalue (e.g. all zeros) gives ``max(eps, min_value)·I``. ``F`` is taken as symmetric
    (``eigh`` reads its lower triangle). Cost: one ``eigh`` and one ``D³`` product.

    ``normalize=False`` drops the division by ``s_max`` (``W = F⁺^alpha + eps·I``), the
    un-normalised form of the linear-network analysis (:mod:`stopgrad.theory.wang`), where the scale
    of ``W`` matters. A batch ``(..., D, D)`` of correlations gives a batch of heads.

    Args:
        F: symmetric correlation ``(D, D)`` or ``(..., D, D)``.
        alpha: exponent > 0.
        eps: ridge added to every eigenvalue.
        min_value: lower clamp of the eigenvalues of ``W``.
        normalize: divide the eigenvalues by the largest one first.

    Returns:
        symmetric float32 ``W``, shaped like ``F``.
    """
    if alpha <= 0:
        raise ValueError(f"alpha={alpha}: must be > 0")
    s, U = torch.linalg.eigh(_check_square(F))  # ascending; reads the lower triangle only
    s = s.clamp_min(0)
    if normalize:
        s = s / s.amax(-1, keepdim=True).clamp_min(torch.finfo(s.dtype).tiny)
    p = s.pow(alpha).add(eps).clamp_min(min_value)  # (..., D)
    return (U * p.unsqueeze(-2)) @ U.mT


def directpred_weight(F: torch.Tensor, eps: float = 0.01, min_value: float = MIN_EIGENVALUE) -> torch.Tensor:
    """DirectPred: ``W = U diag(max(sqrt(s⁺/s_max) + eps, min_value)) Uᵀ``.

    Tian, Chen, Ganguli, ICML 2021 (the DirectPred algorithm, ``p_j = sqrt(s_j / max_j s_j) + eps``);
    reference eps = 0.01, then a clamp at 1e-4, negative eigenvalues clamped to 0. Equal to
    :func:`directset_weight` with ``alpha = 1/2``.
    """
    return directset_weight(F, 0.5, eps, min_value)


def top_eigenvalue(F: torch.Tensor, iters: int = 5) -> torch.Tensor:
    """Largest eigenvalue of a symmetric PSD ``F`` by ``iters`` power iterations (0-d tensor; one
    value per matrix for a batch ``(..., D, D)``).

    Starts from the column of ``F`` with the largest diagonal entry (never orthogonal to the top
    eigenvector unless that column is 0) and returns the Rayleigh quotient ``vᵀFv`` of the last
    iterate, a lower bound whose relative error shrinks like ``(s_2/s_1)^(2·iters)``. Cost:
    ``iters + 1`` matrix-vector products, ``O(iters·D²)``. 0 for ``F = 0``.
    """
    if iters < 1:
        raise ValueError(f"power_iters={iters}: need at least 1")
    F = _check_square(F)  # (..., D, D)
    col = torch.diagonal(F, dim1=-2, dim2=-1).argmax(-1)  # (...,)
    v = torch.take_along_dim(F, col[..., None, None].expand(*F.shape[:-1], 1), dim=-1)  # (..., D, 1)
    tiny = torch.finfo(F.dtype).tiny
    for _ in range(iters):
        v = F @ v
        v = v / torch.linalg.vector_norm(v, dim=-2, keepdim=True).clamp_min(tiny)
    return (v.mT @ (F @ v))[..., 0, 0]


def directcopy_weight(F: torch.Tensor, eps: float = 0.25, norm: str = "spectral",
                      power_iters: int = 5) -> torch.Tensor:
    """DirectCopy: ``W = F / norm(F) + eps·I``, no eigen-decomposition.

    Wang, Chen, Du, Tian 2021 (arXiv 2110.04947, the DirectCopy algorithm): the predictor is set directly to the
    normalised correlation plus a ridge. Public implementations differ on the normalisation:

    - ``"spectral"`` (default): the largest eigenvalue of ``F`` (= its spectral norm, ``F`` being
      PSD), estimated with ``power_iters`` power iterations (:func:`top_eigenvalue`). With
      ``eps = 0.25`` this is the public re-implementations' choice, and it makes DirectCopy
      DirectSet(alpha = 1) (:func:`directset_weight`) up to the power-iteration error.
    - ``"frobenius"``: ``||F||_F`` (exact, one pass; ``≥ s_max``, so ``W``'s spectrum is smaller).
    - ``"none"``: ``F + eps·I`` as in the luckmatters reference (``predictor_reg=directcopy``);
      not scale-invariant, so eps then depends on the scale of the outputs.

    A zero norm (``F = 0``) gives ``eps·I``. ``F`` is taken as symmetric (the tracker's is), so
    ``W`` is as symmetric as ``F``. Cost: ``O(power_iters·D²)``, no ``D³`` step.

    A batch ``(..., D, D)`` gives a batch of heads, each with its own norm.

    Returns:
        symmetric float32 ``W``, shaped like ``F``.
    """
    if norm not in COPY_NORMS:
        raise ValueError(f"norm={norm!r}: expected one of {COPY_NORMS}")
    F = _check_square(F)
    if norm == "spectral":
        scale = top_eigenvalue(F, power_iters)
    elif norm == "frobenius":
        scale = torch.linalg.matrix_norm(F)
    else:
        scale = torch.ones(F.shape[:-2], dtype=F.dtype, device=F.device)
    inv = torch.where(scale > 0, 1.0 / scale.clamp_min(torch.finfo(F.dtype).tiny), 0.0)  # no host sync
    W = F * inv[..., None, None]  # (..., D, D), a new tensor
    W.diagonal(dim1=-2, dim2=-1).add_(eps)
    return W


# ------------------------------------------------------------------------------- linear heads
class LinearHead(nn.Module):
    """A linear predictor ``p = W z + b``; subclasses define :meth:`matrix` (differentiable W)."""

    dim: int
    bias: nn.Parameter | None = None

    def matrix(self) -> torch.Tensor:  # pragma: no cover
        """The ``(D, D)`` matrix ``W`` (with autograd, where W has parameters)."""
        raise NotImplementedError

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return F_.linear(z, self.matrix(), self.bias)  # (B, D)

    def extra_repr(self) -> str:
        return f"dim={self.dim}"


def _random_square(dim: int) -> torch.Tensor:
    """``nn.Linear``'s default initialisation of a ``(dim, dim)`` weight."""
    w = torch.empty(dim, dim)
    nn.init.kaiming_uniform_(w, a=math.sqrt(5))
    return w


def _initial(dim: int, init: str) -> torch.Tensor:
    if init == "identity":
        return torch.eye(dim)
    if init == "random":
        return _random_square(dim)
    raise ValueError(f"init={init!r}: expected 'identity' or 'random'")


class LinearPredictor(LinearHead):
    """A trained linear predictor, initialised to the identity or randomly.

    ``init="identity"``: Wen & Li 2022 (the "identity-initialised prediction head", which trains
    as well as a random one). ``init="random"``: ``nn.Linear``'s default, the learned linear
    predictor of Tian et al. 2021.

    Examples:
        >>> head = LinearPredictor(8, init="identity")
        >>> z = torch.randn(2, 8)
        >>> torch.equal(head(z), z)
        True
    """

    def __init__(self, dim: int, init: str = "identity", bias: bool = False) -> None:
        super().__init__()
        self.dim = dim
        self.weight = nn.Parameter(_initial(dim, init))
        self.bias = nn.Parameter(torch.zeros(dim)) if bias else None

    def matrix(self) -> torch.Tensor:
        return self.weight


class FixedDiagonalPredictor(LinearHead):
    """Identity-initialised head whose diagonal is fixed: only off-diagonal entries train.

    Wen & Li 2022 ("we can even fix the diagonal of the prediction head"). The diagonal is
    a buffer (``diag``, default all ones) and only the ``D·(D − 1)`` off-diagonal entries are a
    parameter (``offdiag``, ``(D, D − 1)``: row ``i`` holds ``W[i, j]`` for ``j ≠ i`` in order),
    scattered into ``W`` on each forward. No optimizer, momentum or weight decay can therefore
    move the diagonal, and weight decay applies to the off-diagonal entries like to any weight
    matrix (``offdiag`` is 2-d, so it is not mistaken for a bias).
    """

    def __init__(self, dim: int, diag_value: float = 1.0) -> None:
        super().__init__()
        self.dim = dim
        self.register_buffer("diag", torch.full((dim,), float(diag_value)))
        self.offdiag = nn.Parameter(torch.zeros(dim, dim - 1))  # identity at step 0
        flat = torch.arange(dim * dim).view(dim, dim)
        off = ~torch.eye(dim, dtype=torch.bool)
        self.register_buffer("offdiag_index", flat[off], persistent=False)  # (D·(D−1),) row-major

    def matrix(self) -> torch.Tensor:
        W = torch.diag(self.diag).flatten()  # (D·D,)
        W = W.scatter(0, self.offdiag_index, self.offdiag.flatten().to(W.dtype))
        return W.view(self.dim, self.dim)


class SymmetricPredictor(LinearHead):
    """A trained symmetric linear predictor ``W = (A + Aᵀ)/2``.

    Tian et al. 2021: a symmetric ``W_p`` is the setting of their analysis and works
    about as well as a free one; Wen & Li 2022 show a trained free head can be strongly asymmetric.
    """

    def __init__(self, dim: int, init: str = "identity") -> None:
        super().__init__()
        self.dim = dim
        self.A = nn.Parameter(_initial(dim, init))

    def matrix(self) -> torch.Tensor:
        return (self.A + self.A.T) / 2


class ClosedFormPredictor(LinearHead):
    """A linear predictor whose ``W`` is overwritten from a closed form (DirectPred, DirectCopy,
    DirectSet), starting from the identity.

    With ``trainable=False`` ``W`` is a buffer: it only changes through :meth:`set_weight`
    (and a never-overwritten one is the "frozen identity" ablation). With ``trainable=True`` it is
    a parameter that also takes gradient steps between overwrites, as in the DirectPred reference
    code (the predictor keeps its optimizer; ``predictor_freq`` sets how often it is overwritten).
    """

    def __init__(self, dim: int, trainable: bool = False) -> None:
        super().__init__()
        self.dim = dim
        self.trainable = trainable
        if trainable:
            self.weight = nn.Parameter(torch.eye(dim))
        else:
            self.register_buffer("weight", torch.eye(dim))

    def matrix(self) -> torch.Tensor:
        return self.weight

    @torch.no_grad()
    def set_weight(self, W: torch.Tensor) -> None:
        """Overwrite ``W`` in place (a parameter keeps its optimizer state, as in the reference)."""
        if W.shape != self.weight.shape:
            raise ValueError(f"W has shape {tuple(W.shape)}, expected {tuple(self.weight.shape)}")
        self.weight.copy_(W)

    def extra_repr(self) -> str:
        return f"dim={self.dim}, trainable={self.trainable}"
