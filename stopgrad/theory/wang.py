"""The linear-network model of Wang, Chen, Du & Tian, "Towards Demystifying Representation
Learning with Non-contrastive Self-supervision" (arXiv 2110.04947), simulated for many seeds at once.

Model. A linear encoder ``W`` ``(k, d)``, a linear predictor ``W_p`` ``(k, k)`` and a target
``W_a`` (``W`` itself with stop-gradient, SimSiam; or its EMA, BYOL). With two views
``x1 = x + ξ1``, ``x2 = x + ξ2`` of a sample ``x`` the loss is::

    L = ½ E || W_p W x1 − SG(W_a x2) ||²  +  (wd / 2) ||W||²_F   (+ (wd_pred / 2) ||W_p||²_F, trained W_p)

and with ``A = E[x1 x1ᵀ] = X + Σ`` (data plus augmentation covariance), ``B = E[x1 x2ᵀ] = X``::

    ∇_W L   = W_pᵀ (W_p W A − W_a B) + wd·W
    ∇_W_p L = (W_p W A − W_a B) Wᵀ + wd_pred·W_p

The predictor is trained by that gradient (``"trained"``, learning rate ``lr·lr_pred``), or set
every step from the online correlation ``F = W A Wᵀ`` by a closed form of
:mod:`stopgrad.predictors`: DirectPred, ``W_p = F^(1/2) + eps·I``, or DirectCopy,
``W_p = F + eps·I`` (DirectSet(alpha) with alpha = 1/2 and 1, both un-normalised: under this
un-normalised loss the scale of ``W_p`` matters, and a predictor normalised by its top eigenvalue
shrinks ``W`` to zero).

Why weight decay is a threshold (the paper's central point, in this model's terms). Where ``X`` and
``Σ`` share eigenvectors ``u_j`` with data variance ``s_j`` and augmentation variance ``σ_j²``,
an aligned ``W`` decouples into modes ``a_j = ||W u_j||`` with predictor eigenvalue ``p_j``::

    ȧ_j = a_j [ p_j s_j − p_j² (s_j + σ_j²) − wd ]

whose bracket can be positive only when ``s_j² / (s_j + σ_j²) > 4·wd`` (its maximum over ``p``).
A direction whose augmentation variance is above the cut-off ``σ_c² = s/(4·wd) − s`` decays to 0,
one below it settles at ``p_j = p₊``, the larger root of the bracket (for DirectPred, DirectCopy and,
with ``wd_pred > 0``, the trained predictor alike). Without weight decay the bracket is positive
for every ``p_j < s_j/(s_j + σ_j²)``: no direction is discarded, the threshold is gone
(:func:`cutoff`, :func:`survives`).

Data (the paper's setting is inputs whose directions carry different augmentation variance and
labels that depend on the invariant part; its exact distribution was not reachable from here, so
these are our choices, each a field of :class:`WangConfig`): ``x = U diag(√s) z`` and
``ξ = U diag(σ) n`` with ``z, n ~ N(0, I_d)`` and a random orthonormal basis ``U`` per seed, every
direction with the same data variance ``s = data_var``, and augmentation variances either
*two-level* (``invariant`` directions at ``sigma2_low``, the rest at ``sigma2_high``) or *log*
(log-spaced from ``sigma2_min`` to ``sigma2_max``). ``W`` starts at ``N(0, init_std²/d)``, a trained
``W_p`` at the identity. Plain gradient descent on the population loss (``batch = 0``, the
gradient flow of the analysis with step ``lr``) or on fresh mini-batches (``batch > 0``; the closed
forms then read an EMA ``F ← rho·F + (1 − rho)·W Â Wᵀ`` as DirectPred does).

Everything is batched over seeds: ``W`` is ``(S, k, d)``; seeds do not interact.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, replace

import torch

from stopgrad.predictors import directcopy_weight, directset_weight

PREDICTORS = ("trained", "directpred", "directcopy")
SPECTRA = ("two-level", "log")


@dataclass(frozen=True)
class WangConfig:
    """Settings of one simulation (the module docstring says which the paper fixes)."""

    d: int = 32
    k: int = 32
    spectrum: str = "two-level"
    invariant: int = 4
    sigma2_low: float = 0.1
    sigma2_high: float = 3.0
    sigma2_min: float = 0.05
    sigma2_max: float = 5.0
    data_var: float = 1.0
    predictor: str = "directpred"
    wd: float = 0.1
    wd_pred: float | None = None  # None: the same as wd
    lr: float = 0.02
    lr_pred: float = 1.0  # multiplier of lr for a trained predictor
    eps: float = 0.0
    ema: float = 0.0  # 0: SimSiam (target = W); (0, 1): BYOL's EMA target
    batch: int = 0  # 0: population gradient; > 0: fresh mini-batches of this size
    rho: float = 0.3
    init_std: float = 0.5
    steps: int = 6000
    log_every: int = 100

    def __post_init__(self) -> None:
        if self.predictor not in PREDICTORS:
            raise ValueError(f"predictor {self.predictor!r} unknown; choose one of {PREDICTORS}")
        if self.spectrum not in SPECTRA:
            raise ValueError(f"spectrum {self.spectrum!r} unknown; choose one of {SPECTRA}")
        if self.d < 2 or self.k < 1:
            raise ValueError(f"need d >= 2 and k >= 1, got d={self.d}, k={self.k}")
        if not 1 <= self.invariant < self.d:
            raise ValueError(f"invariant={self.invariant} must be in [1, d={self.d})")
        if self.wd < 0 or (self.wd_pred is not None and self.wd_pred < 0):
            raise ValueError(f"weight decay must be >= 0, got wd={self.wd}, wd_pred={self.wd_pred}")
        if not 0 <= self.ema < 1:
            raise ValueError(f"ema={self.ema} must lie in [0, 1)")
        if min(self.sigma2_low, self.sigma2_high, self.sigma2_min, self.sigma2_max, self.data_var) <= 0:
            raise ValueError("variances must be > 0")
        if self.steps < 1 or self.log_every < 1 or self.batch < 0:
            raise ValueError(f"need steps >= 1, log_every >= 1, batch >= 0; got {self.steps}, "
                             f"{self.log_every}, {self.batch}")

    def with_(self, **kw) -> "WangConfig":
        return replace(self, **kw)

    def as_dict(self) -> dict:
        return asdict(self)

    def sigma2(self) -> torch.Tensor:
        """Augmentation variance per direction ``(d,)``, ascending (the invariant ones first)."""
        if self.spectrum == "two-level":
            return torch.cat([torch.full((self.invariant,), self.sigma2_low),
                              torch.full((self.d - self.invariant,), self.sigma2_high)])
        return torch.logspace(math.log10(self.sigma2_min), math.log10(self.sigma2_max), self.d)


def cutoff(data_var: float, wd: float) -> float:
    """The augmentation variance above which a direction is discarded: ``s/(4·wd) − s`` (inf at 0)."""
    return math.inf if wd == 0 else data_var / (4 * wd) - data_var


def survives(data_var: float, sigma2: torch.Tensor, wd: float) -> torch.Tensor:
    """Whether the mode bracket ``p s − p²(s + σ²) − wd`` can be positive: ``s²/(s + σ²) > 4·wd``."""
    return data_var ** 2 / (data_var + sigma2) > 4 * wd


@dataclass
class WangTrajectory:
    """Logged state of ``S`` seeds at ``T`` steps."""

    steps: torch.Tensor  # (T,)
    W: torch.Tensor  # (T, S, k, d) encoder snapshots
    Wp: torch.Tensor  # (T, S, k, k) predictor snapshots
    loss: torch.Tensor  # (T, S) population loss without the weight-decay terms
    U: torch.Tensor  # (S, d, d) the basis: column j is the direction with variance sigma2[j]
    sigma2: torch.Tensor  # (d,)
    cfg: WangConfig

    def mode_norms(self) -> torch.Tensor:
        """``||W u_j||`` per logged step, seed and direction ``(T, S, d)``."""
        return torch.linalg.vector_norm(self.W @ self.U.unsqueeze(0), dim=-2)

    def invariant_basis(self) -> torch.Tensor:
        """The ``invariant`` lowest-variance directions ``(S, d, r)``."""
        return self.U[..., : self.cfg.invariant]


def _orthonormal(seeds: int, d: int, gen: torch.Generator) -> torch.Tensor:
    q, r = torch.linalg.qr(torch.randn(seeds, d, d, generator=gen))
    return q * torch.sign(torch.diagonal(r, dim1=-2, dim2=-1)).unsqueeze(-2)  # Haar-distributed


def sample_views(U: torch.Tensor, s: float, sigma2: torch.Tensor, batch: int,
                 gen: torch.Generator) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """A fresh batch ``x`` and its two views, each ``(S, B, d)``."""
    S, d, _ = U.shape
    x = (torch.randn(S, batch, d, generator=gen) * math.sqrt(s)) @ U.mT
    noise = sigma2.sqrt()
    x1 = x + (torch.randn(S, batch, d, generator=gen) * noise) @ U.mT
    x2 = x + (torch.randn(S, batch, d, generator=gen) * noise) @ U.mT
    return x, x1, x2


def _closed_form(cfg: WangConfig, F: torch.Tensor) -> torch.Tensor:
    if cfg.predictor == "directpred":
        return directset_weight(F, 0.5, cfg.eps, min_value=0.0, normalize=False)
    return directcopy_weight(F, cfg.eps, norm="none")


def loss(W: torch.Tensor, Wp: torch.Tensor, Wa: torch.Tensor, A: torch.Tensor, B: torch.Tensor) -> torch.Tensor:
    """Population loss ``½ E||W_p W x1 − W_a x2||²`` per seed ``(S,)`` from ``A = E[x1 x1ᵀ]``,
    ``B = E[x1 x2ᵀ]`` (and ``E[x2 x2ᵀ] = A``), without the weight-decay terms."""
    P = Wp @ W
    return 0.5 * (torch.einsum("sij,sjk,sik->s", P, A, P) - 2 * torch.einsum("sij,sjk,sik->s", P, B, Wa)
                  + torch.einsum("sij,sjk,sik->s", Wa, A, Wa))


def gradients(W: torch.Tensor, Wp: torch.Tensor, Wa: torch.Tensor, A: torch.Tensor, B: torch.Tensor,
              wd: float, wd_pred: float) -> tuple[torch.Tensor, torch.Tensor]:
    """``(∇_W, ∇_W_p)`` of :func:`loss` plus the weight decays, ``W_a`` held fixed (stop-gradient)."""
    R = Wp @ W @ A - Wa @ B  # (S, k, d)
    return Wp.mT @ R + wd * W, R @ W.mT + wd_pred * Wp


def simulate(cfg: WangConfig, seeds: int, seed0: int = 0) -> WangTrajectory:
    """Train ``seeds`` independent linear networks; seed ``i`` uses generator seed ``seed0 + i``.

    Each seed draws its basis ``U`` and initial ``W`` from its own generator, so a seed gives the
    same start under every predictor and weight decay (the comparisons of claim 4 are paired).
    """
    gens = [torch.Generator().manual_seed(10_000 + seed0 + i) for i in range(seeds)]
    U = torch.stack([_orthonormal(1, cfg.d, g)[0] for g in gens])  # (S, d, d)
    W = torch.stack([torch.randn(cfg.k, cfg.d, generator=g) for g in gens]) * (cfg.init_std / math.sqrt(cfg.d))
    stream = torch.Generator().manual_seed(20_000 + seed0)
    sigma2, s = cfg.sigma2(), cfg.data_var
    A = (U * (s + sigma2)) @ U.mT  # (S, d, d)  E[x1 x1ᵀ]
    B = (U * s) @ U.mT  # E[x1 x2ᵀ]
    Wp = torch.eye(cfg.k).expand(seeds, -1, -1).clone()
    Wa = W.clone()
    F = None
    wd_pred = cfg.wd if cfg.wd_pred is None else cfg.wd_pred
    steps, Ws, Wps, losses = [], [], [], []

    def log(t: int) -> None:
        steps.append(t), Ws.append(W.clone()), Wps.append(Wp.clone()), losses.append(loss(W, Wp, Wa, A, B))

    for t in range(cfg.steps + 1):
        if cfg.batch:
            _, x1, x2 = sample_views(U, s, sigma2, cfg.batch, stream)
            A_t = (x1.mT @ x1 + x2.mT @ x2) / (2 * cfg.batch)  # symmetrised over the view order
            B_t = (x1.mT @ x2 + x2.mT @ x1) / (2 * cfg.batch)
            F_t = W @ A_t @ W.mT
            F = F_t if F is None else cfg.rho * F + (1 - cfg.rho) * F_t
        else:
            A_t, B_t = A, B
            F = W @ A @ W.mT
        if cfg.predictor != "trained":
            Wp = _closed_form(cfg, F)
        if t % cfg.log_every == 0 or t == cfg.steps:
            log(t)
        if t == cfg.steps:
            break
        gW, gWp = gradients(W, Wp, Wa, A_t, B_t, cfg.wd, wd_pred)
        if cfg.predictor == "trained":
            Wp = Wp - cfg.lr * cfg.lr_pred * gWp
        W = W - cfg.lr * gW
        Wa = cfg.ema * Wa + (1 - cfg.ema) * W if cfg.ema else W
        if not torch.isfinite(W).all():
            raise FloatingPointError(f"the simulation diverged at step {t + 1} (lr={cfg.lr} too large for "
                                     f"sigma2 up to {float(sigma2.max()):g}?)")
    return WangTrajectory(torch.tensor(steps), torch.stack(Ws), torch.stack(Wps), torch.stack(losses), U,
                          sigma2, cfg)


def principal_angles(W: torch.Tensor, Q: torch.Tensor) -> torch.Tensor:
    """Principal angles (degrees, ascending) between the top-``r`` row space of ``W`` ``(..., k, d)``
    and the span of the orthonormal columns of ``Q`` ``(..., d, r)``; ``(..., r)``."""
    r = Q.shape[-1]
    V = torch.linalg.svd(W, full_matrices=False).Vh[..., :r, :].mT  # (..., d, r)
    cos = torch.linalg.svdvals(V.mT @ Q).clamp(-1.0, 1.0)  # descending cosines
    return torch.rad2deg(torch.arccos(cos))


def kept_directions(norms: torch.Tensor, frac: float = 0.01) -> torch.Tensor:
    """Directions whose ``||W u_j||`` is at least ``frac`` of the largest (per seed) ``(..., d)``."""
    return norms >= frac * norms.amax(-1, keepdim=True)


def probe_error(train_f: torch.Tensor, train_y: torch.Tensor, test_f: torch.Tensor, test_y: torch.Tensor,
                ridge: float = 1e-3) -> torch.Tensor:
    """Relative test error ``MSE / Var(y)`` of a ridge regression (with bias) fitted on the training
    features ``(..., n, m)``; the ridge ``ridge·n`` is on the summed squared error, i.e. ``ridge``
    per sample, scaled by the mean feature variance so that it does not depend on the feature scale."""
    def aug(f):
        return torch.cat([f, torch.ones(*f.shape[:-1], 1)], -1)
    Xt, Xe = aug(train_f), aug(test_f)
    n, m = Xt.shape[-2], Xt.shape[-1]
    scale = train_f.pow(2).mean((-2, -1), keepdim=True).clamp_min(1e-12)  # (..., 1, 1)
    reg = ridge * n * scale * torch.eye(m)
    reg[..., -1, -1] = 0.0  # no penalty on the bias
    w = torch.linalg.solve(Xt.mT @ Xt + reg, Xt.mT @ train_y.unsqueeze(-1))
    err = (Xe @ w).squeeze(-1) - test_y
    return err.pow(2).mean(-1) / test_y.var(-1)


def downstream_errors(traj: WangTrajectory, ns: list[int], label_noise: float = 0.1, test: int = 2000,
                      ridge: float = 1e-3, seed: int = 0) -> dict[str, torch.Tensor]:
    """Sample complexity of the downstream task, raw input against the learned ``W x``.

    Labels ``y = <β, U_invᵀ x> + N(0, label_noise²)`` depend on the invariant directions only
    (``β ~ N(0, I_r)`` per seed). For each ``n`` in ``ns`` a ridge probe (:func:`probe_error`) is
    fitted on ``n`` clean samples, on the raw ``x`` ``(d features)`` and on ``W x`` (``k``
    features, the final encoder), and scored on ``test`` fresh samples.

    Returns:
        ``{"n": (N,), "raw": (N, S), "learned": (N, S)}`` relative test errors.
    """
    gen = torch.Generator().manual_seed(30_000 + seed)
    cfg, W = traj.cfg, traj.W[-1]  # (S, k, d)
    S = W.shape[0]
    Q = traj.invariant_basis()  # (S, d, r)
    beta = torch.randn(S, cfg.invariant, 1, generator=gen)

    def draw(n: int) -> tuple[torch.Tensor, torch.Tensor]:
        x = (torch.randn(S, n, cfg.d, generator=gen) * math.sqrt(cfg.data_var)) @ traj.U.mT
        y = (x @ Q @ beta).squeeze(-1) + label_noise * torch.randn(S, n, generator=gen)
        return x, y

    xe, ye = draw(test)
    raw, learned = [], []
    for n in ns:
        x, y = draw(n)
        raw.append(probe_error(x, y, xe, ye, ridge))
        learned.append(probe_error(x @ W.mT, y, xe @ W.mT, ye, ridge))
    return {"n": torch.tensor(ns), "raw": torch.stack(raw), "learned": torch.stack(learned)}


def samples_needed(ns: torch.Tensor, errors: torch.Tensor, target: float) -> torch.Tensor:
    """Smallest ``n`` whose error is at most ``target``, per seed ``(S,)`` (inf if none)."""
    ok = errors <= target  # (N, S)
    first = torch.where(ok, ns.unsqueeze(-1).float(), torch.tensor(math.inf))
    return first.amin(0)
