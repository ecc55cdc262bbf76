"""The batched regime engine computes the same model as the one-setting simulation."""

import torch
import pytest

from stopgrad.theory.wen_li import WenLiConfig, batch_norm, phi
from stopgrad.theory.wen_li_grid import Draws, GridLoss, check_shared, simulate_grid

BASE = WenLiConfig(d=6, patches=8, feature_patches=2, m=2, batch=16, steps=30, log_every=10)
SETTINGS = [BASE, BASE.with_(alpha1=2.0, alpha2=1.5, noise=0.7, feature_patches=3, bn_eps=1e-3),
            BASE.with_(alpha1=5.0, noise=2.0, init_std=0.3)]


def _reference_loss(W, E, dr, cfg):
    """The paper's loss for one setting from explicit inputs, with wen_li.phi and batch_norm."""
    X1, X2 = dr.views(cfg)  # (S, B, Q, d)
    S = W.shape[0]
    losses = []
    for h in range(W.shape[1]):
        Emat = torch.eye(cfg.m, dtype=E.dtype) + E[:, h] * (1 - torch.eye(cfg.m, dtype=E.dtype))
        out = batch_norm(torch.einsum("smn,sbn->sbm", Emat, phi(W[:, h], X1)), cfg.bn_eps)
        target = batch_norm(phi(W[:, h], X2), cfg.bn_eps).detach()
        losses.append((out - target).pow(2).sum(-1).mean(-1))
    return torch.stack(losses, 1).view(S, -1)


def test_grid_loss_and_gradients_match_the_explicit_model():
    gen = torch.Generator().manual_seed(3)
    G, S, H = len(SETTINGS), 4, 2
    W = torch.randn(G, S, H, BASE.m, BASE.d, generator=gen, dtype=torch.float64).requires_grad_(True)
    E = (0.3 * torch.randn(G, S, H, BASE.m, BASE.m, generator=gen, dtype=torch.float64)).requires_grad_(True)
    dr = Draws.sample(gen, S, BASE.batch, BASE.patches, BASE.d)
    dr = Draws(dr.feat, dr.sign.double(), dr.perm.double(), dr.gauss.double())
    fn = GridLoss(SETTINGS, dtype=torch.float64)
    got = fn(W, E, dr)
    gW, gE = torch.autograd.grad(got.sum(), (W, E))
    for g, cfg in enumerate(SETTINGS):
        Wg = W[g].detach().clone().requires_grad_(True)
        Eg = E[g].detach().clone().requires_grad_(True)
        ref = _reference_loss(Wg, Eg, dr, cfg)
        torch.testing.assert_close(got[g], ref, rtol=1e-9, atol=1e-12)
        rW, rE = torch.autograd.grad(ref.sum(), (Wg, Eg))
        torch.testing.assert_close(gW[g], rW, rtol=1e-9, atol=1e-12)
        off = 1 - torch.eye(BASE.m, dtype=torch.float64)
        torch.testing.assert_close(gE[g] * off, rE * off,
                                   rtol=1e-9, atol=1e-12)


def test_pairs_share_init_and_the_fixed_head_stays_identity():
    tr = simulate_grid(SETTINGS, seeds=3)
    assert tr.align.shape == (4, 3, 3, 2, 2, 2)
    # step 0: both heads of a (setting, seed) start from the same weights; settings share directions
    torch.testing.assert_close(tr.align[0, :, :, 0], tr.align[0, :, :, 1])
    torch.testing.assert_close(tr.align[0, 0], tr.align[0, 2])  # init_std scales, direction shared
    eye = torch.eye(2).expand_as(tr.head[:, :, :, 1])
    assert torch.equal(tr.head[:, :, :, 1], eye)  # fixed head never moves
    assert (tr.head[-1, :, :, 0] - torch.eye(2)).abs().sum() > 0  # trained head does
    assert (tr.diverged == -1).all()
    one = tr.trajectory(1, 0)
    assert one.align.shape == (4, 3, 2, 2) and one.cfg.head == "identity-fixed-diag"
    assert tr.until(10).steps.tolist() == [0, 10]


def test_a_diverging_setting_stops_alone():
    hot = BASE.with_(lr=float("inf"))
    tr = simulate_grid([BASE, hot], seeds=2)
    assert (tr.diverged[1] >= 0).all() and (tr.diverged[0] == -1).all()
    assert torch.isfinite(tr.align[:, 0]).all()


def test_settings_must_share_shapes():
    with pytest.raises(ValueError, match="batch"):
        check_shared([BASE, BASE.with_(batch=32)])
