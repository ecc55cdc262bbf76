"""Many settings of the Wen & Li toy model at once, for regime studies.

:func:`simulate_grid` trains the model of :mod:`stopgrad.theory.wen_li` for ``G`` settings x ``S``
seeds x two heads in one batched computation: the identity-initialised head with its diagonal fixed
(only the off-diagonal trained, the paper's Thm 1) and the head fixed to ``E = I`` (Thm 3, the
control). What may differ between settings is everything that leaves the tensor shapes alone:
``alpha1``, ``alpha2``, ``noise``, ``init_std``, ``lr``, ``lr_head``, ``bn_eps`` and
``feature_patches``; the shapes (``d``, ``patches``, ``m``, ``batch``, ``steps``) are shared.

**Common random numbers.** Seed ``s`` has one standard-normal initial direction and one data
stream (feature choices, signs, feature positions, the noise patches' standard normals), shared by
every setting and by both heads; each setting scales them by its own ``init_std``, ``alpha_l`` and
``noise``. The two heads of a (setting, seed) pair therefore start from the same weights and see
the same samples, so their difference is the head's doing alone, and neighbouring settings differ
by their parameters, not by luck. Within a setting the seeds are independent, as in
:func:`stopgrad.theory.wen_li.simulate`.

Cost: the noise patches' inner products ``<w_j, g_p>`` are one batched matmul over the shared
draws, so a step costs about as much for 100 settings as the data sampling of one.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Sequence

import torch

from stopgrad.theory.wen_li import Trajectory, WenLiConfig

#: Fields of :class:`WenLiConfig` that may differ between the settings of one grid.
PER_SETTING = ("alpha1", "alpha2", "noise", "init_std", "lr", "lr_head", "bn_eps", "feature_patches")
#: Fields every setting of one grid shares (they fix tensor shapes or the loop).
SHARED = ("d", "patches", "m", "batch", "steps", "log_every")
#: Head index along the head axis: 0 = trained (identity init, diagonal fixed), 1 = fixed to I.
HEADS = ("identity-fixed-diag", "fixed-identity")


@dataclass
class GridTrajectory:
    """Logged quantities of a grid, axes ``(T, G, S, H, ...)`` with ``H`` = :data:`HEADS`.

    ``align[t, g, s, h, j, l] = |cos(w_j, v_l)|``; ``feat`` the signed ``<w_j, v_l/||v_l||>``;
    ``head`` the head matrix ``E``; ``loss`` per (setting, seed, head).
    """

    steps: torch.Tensor  # (T,)
    align: torch.Tensor  # (T, G, S, H, m, 2)
    feat: torch.Tensor  # (T, G, S, H, m, 2)
    head: torch.Tensor  # (T, G, S, H, m, m)
    wnorm: torch.Tensor  # (T, G, S, H, m)
    loss: torch.Tensor  # (T, G, S, H)
    settings: list[WenLiConfig]
    diverged: torch.Tensor  # (G, S, H): step at which the loss turned non-finite, -1 if never

    def trajectory(self, g: int, h: int) -> Trajectory:
        """Setting ``g`` with head ``h`` as an ordinary :class:`Trajectory` over its seeds."""
        cfg = self.settings[g].with_(head=HEADS[h])
        return Trajectory(steps=self.steps, align=self.align[:, g, :, h], feat=self.feat[:, g, :, h],
                          head=self.head[:, g, :, h], wnorm=self.wnorm[:, g, :, h],
                          loss=self.loss[:, g, :, h], cfg=cfg)

    def until(self, step: int) -> "GridTrajectory":
        """The same grid cut at ``step`` (to read outcomes at shorter training lengths)."""
        keep = self.steps <= step
        return GridTrajectory(self.steps[keep], self.align[keep], self.feat[keep], self.head[keep],
                              self.wnorm[keep], self.loss[keep],
                              [c.with_(steps=int(step)) for c in self.settings],
                              torch.where((self.diverged >= 0) & (self.diverged <= step), self.diverged, -1))


def check_shared(settings: Sequence[WenLiConfig]) -> WenLiConfig:
    """The first setting, after checking that all settings share :data:`SHARED` fields."""
    if not settings:
        raise ValueError("a grid needs at least one setting")
    first = settings[0]
    for c in settings[1:]:
        diff = [f for f in SHARED if getattr(c, f) != getattr(first, f)]
        if diff:
            raise ValueError(f"settings of one grid must share {', '.join(diff)}; run them as separate grids")
    return first


def _column(settings: Sequence[WenLiConfig], name: str, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """``(G,)`` tensor of one per-setting field."""
    return torch.tensor([float(getattr(c, name)) for c in settings], dtype=dtype)


@dataclass
class Draws:
    """One step's random numbers for every seed, shared by all settings and both heads.

    ``feat (S, B)``: 0 → the sample carries v1, 1 → v2; ``sign (S, B)``: ±1; ``perm (S, B, P)``: a
    random permutation per sample (patch p is a feature patch when ``perm[p] < feature_patches``);
    ``gauss (S, B, P, d)``: standard normals behind the noise patches.
    """

    feat: torch.Tensor
    sign: torch.Tensor
    perm: torch.Tensor
    gauss: torch.Tensor

    @staticmethod
    def sample(gen: torch.Generator, S: int, B: int, P: int, d: int) -> "Draws":
        return Draws(feat=torch.randint(0, 2, (S, B), generator=gen),
                     sign=torch.randint(0, 2, (S, B), generator=gen).float() * 2 - 1,
                     perm=torch.rand(S, B, P, generator=gen).argsort(-1).float(),
                     gauss=torch.randn(S, B, P, d, generator=gen))

    def views(self, cfg: WenLiConfig) -> tuple[torch.Tensor, torch.Tensor]:
        """The explicit inputs of one setting, ``(S, B, P/2, d)`` each (what ``phi`` sees; for tests)."""
        d, Q = self.gauss.shape[-1], self.gauss.shape[2] // 2
        is_feat = self.perm < cfg.feature_patches
        X = self.gauss * (cfg.noise / d ** 0.5) * (~is_feat).unsqueeze(-1)
        coef = torch.where(self.feat == 0, cfg.alpha1, cfg.alpha2) * self.sign
        X[..., 0] += (coef * (self.feat == 0)).unsqueeze(-1) * is_feat
        X[..., 1] += (coef * (self.feat == 1)).unsqueeze(-1) * is_feat
        return X[:, :, :Q], X[:, :, Q:]


class GridLoss:
    """The loss of every (setting, seed, head) row for given weights and draws (see :func:`simulate_grid`)."""

    def __init__(self, settings: Sequence[WenLiConfig], dtype: torch.dtype = torch.float32) -> None:
        base = check_shared(settings)
        G = len(settings)
        self.G, self.m, self.d, self.Q = G, base.m, base.d, base.patches // 2
        col = {k: _column(settings, k, dtype) for k in PER_SETTING}
        self.eps = col["bn_eps"].view(1, 1, G, 1, 1)
        self.fp = col["feature_patches"]
        self.noise3 = (col["noise"].view(1, 1, G, 1, 1) / base.d ** 0.5).pow(3)
        self.alpha1, self.alpha2 = col["alpha1"].view(1, 1, G), col["alpha2"].view(1, 1, G)
        self.offmask = 1 - torch.eye(base.m, dtype=dtype)

    def phi(self, W: torch.Tensor, gauss: torch.Tensor, noise_mask: torch.Tensor, k: torch.Tensor,
            z3: torch.Tensor, on1: torch.Tensor) -> torch.Tensor:
        """``phi_j = Σ_q <w_j, X_q>^3`` of one view, both heads, every setting: ``(S, B, G, H, m)``.

        The noise patches give ``noise_g³/d^{3/2} Σ_q <w_j, g_q>³`` over the view's noise patches, from
        one matmul against the seed's shared draws ``g``; each of the view's ``k`` feature patches gives
        ``(z·alpha_l·<w_j, e_l>)³``.
        """
        G, S, H, m, d = W.shape
        B, Q = gauss.shape[1], gauss.shape[2]
        gw = torch.bmm(gauss.reshape(S, B * Q, d), W.permute(1, 4, 0, 2, 3).reshape(S, d, G * H * m))
        c = gw.view(S, B, Q, G, H * m).pow(3) * noise_mask.unsqueeze(-1)
        w_l = torch.where(on1, W[..., 0].permute(1, 0, 2, 3).unsqueeze(1),
                          W[..., 1].permute(1, 0, 2, 3).unsqueeze(1))  # (S, B, G, H, m)
        return c.sum(2).view(S, B, G, H, m) * self.noise3 + (k * z3).view(S, B, G, 1, 1) * w_l.pow(3)

    def head(self, E: torch.Tensor) -> torch.Tensor:
        """The head matrices ``I + offdiag(E)``, ``(G, S, H, m, m)``."""
        return torch.eye(self.m, dtype=E.dtype) + E * self.offmask

    def __call__(self, W: torch.Tensor, E: torch.Tensor, dr: Draws) -> torch.Tensor:
        """``||BN[E·phi(X1)] − SG(BN[phi(X2)])||²`` averaged over the batch, ``(G, S, H)``."""
        S, B, Q = dr.feat.shape[0], dr.feat.shape[1], self.Q
        is_feat = dr.perm.unsqueeze(-1) < self.fp  # (S, B, P, G)
        noise_mask = (~is_feat).to(dr.gauss.dtype)
        on1 = (dr.feat == 0).view(S, B, 1, 1, 1)
        z3 = (torch.where(on1.view(S, B, 1), self.alpha1, self.alpha2) * dr.sign.view(S, B, 1)).pow(3)
        k1, k2 = (is_feat[:, :, sl].sum(2).to(dr.gauss.dtype) for sl in (slice(0, Q), slice(Q, None)))
        phi1 = self.phi(W, dr.gauss[:, :, :Q], noise_mask[:, :, :Q], k1, z3, on1)
        out = _bn(torch.einsum("gshmn,sbghn->sbghm", self.head(E), phi1), self.eps)
        with torch.no_grad():
            target = _bn(self.phi(W, dr.gauss[:, :, Q:], noise_mask[:, :, Q:], k2, z3, on1), self.eps)
        return (out - target).pow(2).sum(-1).mean(1).permute(1, 0, 2)


def simulate_grid(settings: Sequence[WenLiConfig], seeds: int, seed0: int = 0,
                  progress: Callable[[int], None] | None = None) -> GridTrajectory:
    """Train every setting x seed with both heads (see the module docstring), SGD on fresh samples.

    The loss of each (setting, seed, head) row is the paper's ``||BN[E·phi(X1)] − SG(BN[phi(X2)])||²``
    averaged over the batch; the summed loss is separable, so each row is its own SGD run. A row
    whose loss turns non-finite stops there (its step is in ``diverged``); the others go on.
    """
    base = check_shared(settings)
    G, S, H, m, d, B, P = len(settings), seeds, len(HEADS), base.m, base.d, base.batch, base.patches
    gen = torch.Generator().manual_seed(7_919 * seed0 + 29)
    loss_fn = GridLoss(settings)
    init = torch.randn(S, m, d, generator=gen) / d ** 0.5  # shared direction per seed
    W = (_column(settings, "init_std").view(G, 1, 1, 1, 1) * init.view(1, S, 1, m, d)).expand(G, S, H, m, d)
    W = W.clone().requires_grad_(True)
    E = torch.zeros(G, S, H, m, m, requires_grad=True)  # off-diagonal part; head 1 never moves
    lr = _column(settings, "lr").view(G, 1, 1, 1, 1)
    lr_head = torch.stack([_column(settings, "lr_head"), torch.zeros(G)], 1).view(G, 1, H, 1, 1)
    alive = torch.ones(G, S, H, dtype=torch.bool)
    diverged = torch.full((G, S, H), -1, dtype=torch.long)
    logs: dict[str, list[torch.Tensor]] = {k: [] for k in ("steps", "align", "feat", "head", "wnorm", "loss")}
    for step in range(base.steps + 1):
        loss = loss_fn(W, E, Draws.sample(gen, S, B, P, d))
        bad = alive & ~torch.isfinite(loss)
        if bad.any():
            diverged[bad] = step
            alive &= ~bad
        if step % base.log_every == 0 or step == base.steps:
            with torch.no_grad():
                w = W.detach()
                f = w[..., :2].clone()
                logs["steps"].append(torch.tensor(step))
                logs["feat"].append(f)
                logs["align"].append(f.abs() / w.norm(dim=-1, keepdim=True).clamp_min(1e-30))
                logs["head"].append(loss_fn.head(E.detach()))
                logs["wnorm"].append(w.norm(dim=-1))
                logs["loss"].append(loss.detach().clone())
            if progress is not None:
                progress(step)
        if step == base.steps:
            break
        torch.where(alive, loss, torch.zeros(())).sum().backward()
        with torch.no_grad():
            keep = alive.view(G, S, H, 1, 1)
            W -= torch.where(keep, lr * W.grad, torch.zeros(()))
            E -= torch.where(keep, lr_head * (E.grad * loss_fn.offmask), torch.zeros(()))
            W.grad = None
            E.grad = None
    return GridTrajectory(steps=torch.stack(logs["steps"]), align=torch.stack(logs["align"]),
                          feat=torch.stack(logs["feat"]), head=torch.stack(logs["head"]),
                          wnorm=torch.stack(logs["wnorm"]), loss=torch.stack(logs["loss"]),
                          settings=list(settings), diverged=diverged)


def _bn(z: torch.Tensor, eps: torch.Tensor) -> torch.Tensor:
    """:func:`stopgrad.theory.wen_li.batch_norm` over the batch axis (1 of ``(S, B, G, H, m)``)."""
    mean = z.mean(1, keepdim=True)
    var = z.var(1, unbiased=False, keepdim=True)
    return (z - mean) / torch.sqrt(var + eps)


__all__ = ["Draws", "GridLoss", "GridTrajectory", "HEADS", "PER_SETTING", "SHARED", "simulate_grid"]
