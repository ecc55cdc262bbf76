"""The linear-probe protocol: multinomial logistic regression on frozen features, its L2 penalty
chosen on a validation split held out from the training set, then refit on the whole training set.

This is the protocol of the linear evaluations that fit a convex classifier rather than train
one with SGD for a fixed number of epochs (SimCLR's transfer evaluation, Chen et al. 2020,
App. B.8: L-BFGS with an L2 penalty chosen on a validation split; CLIP's linear probes, Radford
et al. 2021, Sec. 3.2). With no epochs and no learning rate, the one choice left, the penalty, is
made on data the test set never sees:

1. standardise the features with the mean and std of the training split (a BN without affine,
   as Chen & He 2021 and Wang et al. 2021 place before the classifier);
2. hold out the last ``val_fraction`` of the training split (10,000 of Fashion-MNIST's 60,000);
3. for each L2 penalty in ``grid`` (largest first, each fit warm-started from the previous one),
   fit on the rest with full-batch L-BFGS (up to ``search_iter`` iterations) and score top-1 on
   the held-out part; the path stops once ``patience`` penalties in a row score below the best
   so far (the validation curve along the path rises to one peak and falls, as in glmnet's paths);
4. refit on the whole training split with the best penalty (the largest among ties), warm-started
   from its search fit, up to ``max_iter`` iterations, and report top-1 on the test split, once.

The fits stop at their iteration caps, not at a gradient tolerance: on 50,000 x 2,304 ConvNet
features the largest gradient entry is still above 1e-4 after 100 iterations. The caps (50 per
search fit, 100 for the refit, as scikit-learn's default ``max_iter``) were set by measurement:
on the random ConvNet's Fashion-MNIST features they choose the same penalty and a test top-1
within 0.0005 of 100-iteration fits, a 300-iteration refit and the full grid (0.8730 against
0.8735), with 300 iterations instead of 681 (97 s instead of 259 s on one loaded thread; one
iteration reads the feature matrix twice). ``search_dtype=torch.bfloat16`` halves an
iteration on CPUs with AMX, but rounding the weights to bf16 stalls the line search of the
weaker penalties (they then tie with the stronger one), so the default is fp32.

Examples:
    >>> g = torch.Generator().manual_seed(0)
    >>> x = torch.randn(600, 8, generator=g); y = (x[:, 0] > 0).long()
    >>> res = linear_protocol(x[:500], y[:500], x[500:], y[500:])
    >>> res.top1 > 0.9, res.l2 in res.grid
    (True, True)
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Callable, Sequence

import torch
import torch.nn.functional as F

L2_GRID = (1e-1, 1e-2, 1e-3, 1e-4, 1e-5)
PROTOCOL = ("logistic regression (full-batch L-BFGS) on standardised frozen features; L2 penalty chosen from "
            "{grid} on the last {val} training images held out (fits of up to {search} iterations, strongest "
            "penalty first, stopping once {patience} in a row score below the best), refit on all {n} (up to "
            "{iters} iterations), test top-1 reported once")


@dataclass
class ProbeResult:
    """The outcome of :func:`linear_protocol`, recorded beside ``linear_top1`` in ``summary.json``."""

    top1: float
    train_top1: float
    l2: float
    grid: list[float]
    val_top1: dict[str, float]
    val_images: int
    train_images: int
    iterations: int
    protocol: str = ""
    extra: dict[str, Any] = field(default_factory=dict)

    def record(self) -> dict[str, Any]:
        doc = asdict(self)
        doc.pop("extra")
        return {**doc, **self.extra}


def fit_logistic(x: torch.Tensor, y: torch.Tensor, num_classes: int, l2: float, max_iter: int = 300,
                 init: tuple[torch.Tensor, torch.Tensor] | None = None) -> tuple[torch.Tensor, torch.Tensor, int]:
    """Minimise ``CE(x Wᵀ + b, y) + l2/2 ‖W‖²`` (mean cross-entropy) with full-batch L-BFGS.

    ``x`` may be bf16 (the matmuls then run in bf16 with fp32 accumulation, the weights, loss and
    L-BFGS state stay fp32): 3-4x faster on CPUs with AMX, for the penalty search. Returns
    ``(W (C, D), b, iterations)``; ``init`` warm-starts from a previous solution.
    """
    w = (init[0].clone() if init else torch.zeros(num_classes, x.shape[1])).requires_grad_(True)
    b = (init[1].clone() if init else torch.zeros(num_classes)).requires_grad_(True)
    opt = torch.optim.LBFGS([w, b], lr=1.0, max_iter=max_iter, history_size=20, line_search_fn="strong_wolfe",
                            tolerance_grad=1e-6, tolerance_change=1e-10)

    def closure() -> torch.Tensor:
        opt.zero_grad(set_to_none=True)
        logits = F.linear(x, w.to(x.dtype)).float() + b  # (N, C); W as (C, D): x is read row-major
        loss = F.cross_entropy(logits, y) + 0.5 * l2 * (w * w).sum()
        loss.backward()
        return loss

    opt.step(closure)
    iters = int(opt.state[opt._params[0]].get("n_iter", 0))
    return w.detach(), b.detach(), iters


def top1(x: torch.Tensor, y: torch.Tensor, w: torch.Tensor, b: torch.Tensor) -> float:
    with torch.no_grad():
        return (torch.argmax(F.linear(x.float(), w) + b, dim=1) == y).float().mean().item()


def standardise(train: torch.Tensor, *others: torch.Tensor) -> list[torch.Tensor]:
    mean, std = train.mean(0), train.std(0) + 1e-6
    return [(t - mean) / std for t in (train, *others)]


def linear_protocol(train_f: torch.Tensor, train_y: torch.Tensor, test_f: torch.Tensor, test_y: torch.Tensor,
                    grid: Sequence[float] = L2_GRID, val_fraction: float = 1 / 6, search_iter: int = 50,
                    max_iter: int = 100, search_dtype: torch.dtype = torch.float32,
                    progress: Callable[[str], None] | None = None, patience: int | None = 2) -> ProbeResult:
    """The protocol of the module docstring. Features are float ``(N, D)``; labels int64 in [0, C).

    ``patience=None`` searches the whole grid.
    """
    if patience is not None and patience < 1:
        raise ValueError(f"patience={patience}: must be at least 1 (or None to search the whole grid)")
    if not 0 < val_fraction < 1:
        raise ValueError(f"val_fraction={val_fraction}: must lie in (0, 1)")
    train_f, test_f = train_f.float(), test_f.float()
    n = len(train_f)
    n_val = max(1, round(n * val_fraction))
    if n - n_val < 2:
        raise ValueError(f"{n} labelled training images are too few to hold out a validation split")
    num_classes = int(max(train_y.max(), test_y.max())) + 1
    grid = sorted((float(v) for v in grid), reverse=True)  # strongest penalty first: warm starts converge fast
    fit_x, val_x = standardise(train_f[:-n_val], train_f[-n_val:])
    fit_y, val_y = train_y[:-n_val], train_y[-n_val:]
    search_x = fit_x.to(search_dtype)
    scores: dict[str, float] = {}
    fits: dict[float, tuple[torch.Tensor, torch.Tensor]] = {}
    init, iters = None, 0
    worse = 0
    for l2 in grid:
        w, b, k = fit_logistic(search_x, fit_y, num_classes, l2, search_iter, init)
        init, iters, fits[l2] = (w, b), iters + k, (w, b)
        scores[f"{l2:g}"] = top1(val_x, val_y, w, b)
        if progress:
            progress(f"l2={l2:g}: validation top-1 {scores[f'{l2:g}']:.4f}")
        worse = worse + 1 if scores[f"{l2:g}"] < max(scores.values()) else 0
        if patience is not None and worse >= patience:
            break
    searched = [v for v in grid if f"{v:g}" in scores]
    best = max(searched, key=lambda v: (scores[f"{v:g}"], v))  # ties: the stronger penalty
    all_x, all_test = standardise(train_f, test_f)
    w, b, k = fit_logistic(all_x, train_y, num_classes, best, max_iter, fits[best])
    if progress:
        progress(f"refit on all {n} with l2={best:g}")
    return ProbeResult(top1=top1(all_test, test_y, w, b), train_top1=top1(all_x, train_y, w, b), l2=best,
                       grid=list(grid), val_top1=scores, val_images=n_val, train_images=n, iterations=iters + k,
                       protocol=PROTOCOL.format(grid=[f"{v:g}" for v in grid], val=n_val, n=n, search=search_iter,
                                                iters=max_iter, patience=patience or len(grid)),
                       extra={"at_grid_edge": best in (grid[0], grid[-1]), "searched": searched})
