"""SimCLR, Barlow Twins, SwAV and DINO: losses against their formulas, and method behaviour."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from stopgrad.backbones import build_backbone
from stopgrad.losses import barlow_twins_loss, dino_loss, info_nce, sinkhorn, swapped_prediction
from stopgrad.methods import get_method
from stopgrad.methods.dino import teacher_temperature


def make(name, **cfg):
    backbone, dim = build_backbone("convnet", in_channels=1, width=0.25)
    cls = get_method(name)
    return cls(backbone, dim, cls.Config(**cfg))


def views(b=8, n=2):
    return [torch.randn(b, 1, 28, 28) for _ in range(n)]


def test_info_nce_matches_the_nt_xent_formula():
    torch.manual_seed(0)
    za, zb, t = torch.randn(6, 5), torch.randn(6, 5), 0.3
    z = F.normalize(torch.cat([za, zb]), dim=1)  # (2N, D)
    n2 = z.shape[0]
    total = 0.0
    for i in range(n2):  # ℓ(i, j) = −log exp(s_ij/τ) / Σ_{k≠i} exp(s_ik/τ)
        j = (i + 6) % n2
        denom = sum(math.exp(float(z[i] @ z[k]) / t) for k in range(n2) if k != i)
        total += -math.log(math.exp(float(z[i] @ z[j]) / t) / denom)
    assert info_nce(za, zb, t).item() == pytest.approx(total / n2, rel=1e-5)
    assert info_nce(za, zb, t).item() == pytest.approx(info_nce(zb, za, t).item(), rel=1e-6)  # symmetric


def test_info_nce_with_global_keys_equals_the_whole_batch():
    torch.manual_seed(0)
    za, zb = torch.randn(8, 4), torch.randn(8, 4)
    A, B = F.normalize(za, dim=1), F.normalize(zb, dim=1)
    halves = [info_nce(za[s], zb[s], 0.5, all_a=A, all_b=B, offset=s.start) for s in (slice(0, 4), slice(4, 8))]
    assert (sum(halves) / 2).item() == pytest.approx(info_nce(za, zb, 0.5).item(), rel=1e-6)


def test_barlow_twins_matches_eq1_and_drops_off_diagonal():
    torch.manual_seed(0)
    za, zb = torch.randn(32, 5), torch.randn(32, 5)
    a = (za - za.mean(0)) / za.std(0, unbiased=False)
    b = (zb - zb.mean(0)) / zb.std(0, unbiased=False)
    c = a.T @ b / 32
    on = sum((1 - c[i, i]) ** 2 for i in range(5))
    off = sum(c[i, j] ** 2 for i in range(5) for j in range(5) if i != j)
    loss, on_t, off_t = barlow_twins_loss(za, zb, lambd=0.2)
    assert loss.item() == pytest.approx(float(on + 0.2 * off), rel=1e-4)
    assert barlow_twins_loss(za, zb, 0.2, off_diagonal=False)[0].item() == pytest.approx(float(on), rel=1e-4)
    assert loss.item() == pytest.approx(barlow_twins_loss(zb, za, 0.2)[0].item(), rel=1e-5)  # C ↔ Cᵀ
    assert barlow_twins_loss(za, za * 3 + 1, 0.2)[1].item() == pytest.approx(0.0, abs=1e-6)  # perfect invariance


def test_sinkhorn_equipartitions():
    torch.manual_seed(0)
    scores = F.normalize(torch.randn(64, 8), dim=1) @ F.normalize(torch.randn(10, 8), dim=1).T
    q = sinkhorn(scores, eps=0.05, iters=50)
    assert torch.allclose(q.sum(1), torch.ones(64), atol=1e-5)  # each sample is a distribution
    assert torch.allclose(q.sum(0), torch.full((10,), 6.4), rtol=1e-3)  # prototypes share the batch
    assert (q.argmax(1) == scores.argmax(1)).float().mean() > 0.5


def test_swapped_prediction_and_dino_loss_are_cross_entropies():
    torch.manual_seed(0)
    s, t = torch.randn(4, 6), torch.randn(4, 6)
    q = F.softmax(t, dim=1)
    expected = -(q * F.log_softmax(s / 0.1, dim=1)).sum(1).mean()
    assert swapped_prediction(s, q, 0.1).item() == pytest.approx(expected.item(), rel=1e-5)
    c = torch.randn(6)
    exp_dino = -(F.softmax((t - c) / 0.04, 1) * F.log_softmax(s / 0.1, 1)).sum(1).mean()
    assert dino_loss(s, t, c, 0.1, 0.04).item() == pytest.approx(exp_dino.item(), rel=1e-5)
    # a uniform teacher gives ln K whatever the student when the student is uniform too
    assert dino_loss(torch.zeros(3, 6), torch.zeros(3, 6), None, 0.1, 0.04).item() == pytest.approx(math.log(6))


def test_teacher_temperature_warmup_is_a_pure_schedule():
    assert teacher_temperature(0, 0.04, 0.07, 100) == pytest.approx(0.04)
    assert teacher_temperature(50, 0.04, 0.07, 100) == pytest.approx(0.055)
    assert teacher_temperature(500, 0.04, 0.07, 100) == pytest.approx(0.07)
    assert teacher_temperature(3, 0.04, 0.07, 0) == pytest.approx(0.07)


def test_dino_center_is_a_hook_and_centering_can_be_off():
    torch.manual_seed(0)
    m = make("dino", out_dim=32, bottleneck=16, proj_hidden=32)
    out = m(views(), 0)
    assert torch.count_nonzero(m.center) == 0, "the loss must not update the center"
    out.loss.backward()
    assert all(p.grad is None for p in m.target_head.parameters())
    m.after_step(0, 10)
    assert torch.count_nonzero(m.center) > 0
    off = make("dino", out_dim=32, bottleneck=16, proj_hidden=32, centering=False)
    off(views(), 0)
    off.after_step(0, 10)
    assert torch.count_nonzero(off.center) == 0
    out3 = m(views(n=4), 1)  # multi-crop: 2 teacher views, 4 student views
    assert torch.isfinite(out3.loss)


def test_swav_fixed_prototypes_never_move_and_learnable_stay_normalised():
    torch.manual_seed(0)
    fixed = make("swav", prototypes=10, learnable_prototypes=False)
    w0 = fixed.prototypes.weight.clone()
    opt = torch.optim.SGD([p for p in fixed.parameters() if p.requires_grad], lr=0.5, momentum=0.9)
    for step in range(3):
        out = fixed(views(), step)
        opt.zero_grad()
        out.loss.backward()
        opt.step()
        fixed.after_step(step, 3)
    assert torch.equal(fixed.prototypes.weight, w0)
    learn = make("swav", prototypes=10, freeze_prototypes_steps=1)
    w1 = learn.prototypes.weight.clone()
    out = learn(views(), 0)
    out.loss.backward()
    learn.before_optimizer_step(0)
    assert learn.prototypes.weight.grad is None, "frozen during the first steps"
    out = learn(views(), 1)
    out.loss.backward()
    learn.before_optimizer_step(1)
    assert learn.prototypes.weight.grad is not None
    torch.optim.SGD(learn.parameters(), lr=1.0).step()
    learn.after_step(1, 3)
    assert not torch.equal(learn.prototypes.weight, w1)
    assert torch.allclose(learn.prototypes.weight.norm(dim=1), torch.ones(10), atol=1e-5)


def test_swav_queue_fills_and_multicrop_runs():
    torch.manual_seed(0)
    m = make("swav", prototypes=10, queue_length=12)
    for step in range(3):
        m(views(b=8), step)
        m.after_step(step, 3)
    assert int(m.queue_filled) == 12
    assert torch.isfinite(m(views(b=8, n=4), 3).loss)


def test_barlow_lambda_modes_and_bad_values():
    m = make("barlow", lambd_mode="inverse-dim", proj_dim=64)
    assert m.lambd == pytest.approx(1 / 64)
    out = m(views(), 0)
    assert set(out.logs) == {"on_diag", "off_diag"}
    with pytest.raises(ValueError, match="lambd_mode"):
        get_method("barlow").Config(lambd_mode="auto").validate()
    with pytest.raises(ValueError, match="temperature"):
        get_method("simclr").Config(temperature=0).validate()


def test_local_crops_are_small_and_configurable():
    from stopgrad.augment import build_views

    out = build_views("28-gray", 2, local_views=2, local_overrides={"size": 10})(torch.zeros(3, 1, 28, 28, dtype=torch.uint8))
    assert [tuple(o.shape[-2:]) for o in out] == [(28, 28), (28, 28), (10, 10), (10, 10)]
    assert len(build_views("32", 2)(torch.zeros(1, 3, 32, 32, dtype=torch.uint8))) == 2
    with pytest.raises(ValueError, match="local_views"):
        build_views("28-gray", 2, local_views=-1)
    with pytest.raises(ValueError, match="no_such"):
        build_views("28-gray", 2, local_views=1, local_overrides={"no_such": 1})
    with pytest.raises(ValueError, match="local crops of size 28 are not smaller than the global views"):
        build_views("28-gray", 2, local_views=1, local_overrides={"size": 28})


@pytest.mark.parametrize("name", ["swav", "dino"])
def test_multicrop_training_run(name, tiny):
    from stopgrad.config import resolve
    from stopgrad.train import train

    summary = train(resolve("default", [f"method.name={name}", "data.local_views=2", *tiny()]))
    assert summary["steps"] == 2 and math.isfinite(summary["final_loss"])


def test_exactly_two_views_methods_name_the_problem():
    for name in ("simclr", "barlow", "simple"):
        with pytest.raises(ValueError, match="exactly 2 views"):
            make(name)(views(n=3), 0)
