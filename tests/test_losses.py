"""Losses against their papers' formulas, written out independently with numpy."""

import numpy as np
import torch

from stopgrad.losses import negative_cosine, normalized_mse


def np_cos(a, b):
    return (a * b).sum(1) / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1))


def test_negative_cosine_matches_simsiam_eq1():
    p, z = torch.randn(16, 32, dtype=torch.float64), torch.randn(16, 32, dtype=torch.float64)
    expected = -np_cos(p.numpy(), z.numpy()).mean()
    assert abs(negative_cosine(p, z).item() - expected) < 1e-6
    assert abs(negative_cosine(p, p).item() + 1.0) < 1e-6
    assert abs(negative_cosine(p, -p).item() - 1.0) < 1e-6


def test_normalized_mse_matches_byol_eq2():
    p, z = torch.randn(16, 32), torch.randn(16, 32)
    pn = p.numpy() / np.linalg.norm(p.numpy(), axis=1, keepdims=True)
    zn = z.numpy() / np.linalg.norm(z.numpy(), axis=1, keepdims=True)
    expected = ((pn - zn) ** 2).sum(1).mean()
    assert abs(normalized_mse(p, z).item() - expected) < 1e-5
    # symmetric in its arguments and invariant to positive rescaling
    assert abs(normalized_mse(z, p).item() - expected) < 1e-5
    assert abs(normalized_mse(3 * p, 0.5 * z).item() - expected) < 1e-5
