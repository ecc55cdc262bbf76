"""Pure loss functions. None of them needs a process group; none holds schedule state."""

from __future__ import annotations

import torch
import torch.nn.functional as F


def negative_cosine(p: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
    """SimSiam's ``D(p, z) = −⟨p/‖p‖, z/‖z‖⟩`` averaged over the batch (Chen & He 2021, eq. 1).

    The caller decides whether ``z`` is detached (the stop-gradient of eq. 3).

    Examples:
        >>> p = torch.randn(8, 16); negative_cosine(p, p).item()  # doctest: +SKIP
        -1.0
    """
    return -F.cosine_similarity(p.float(), z.float(), dim=-1).mean()


def normalized_mse(p: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
    """BYOL's ``‖p̄ − z̄‖² = 2 − 2⟨p, z⟩/(‖p‖‖z‖)`` averaged over the batch (Grill et al. 2020, eq. 2)."""
    return (2 - 2 * F.cosine_similarity(p.float(), z.float(), dim=-1)).mean()


LOSSES = {"cosine": negative_cosine, "mse": normalized_mse}
