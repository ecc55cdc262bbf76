"""Every registered method: stop-gradient, EMA, parameter groups, and a two-step training run."""

import json

import pytest
import torch

from stopgrad.backbones import build_backbone
from stopgrad.config import resolve
from stopgrad.methods import METHODS, ema_update, get_method
from stopgrad.methods.base import cosine_momentum, make_target
from stopgrad.train import train


def make(name, **cfg):
    backbone, dim = build_backbone("convnet", in_channels=1, width=0.25)
    cls = get_method(name)
    return cls(backbone, dim, cls.Config(**cfg))


def views(b=8):
    return [torch.randn(b, 1, 28, 28), torch.randn(b, 1, 28, 28)]


def test_simsiam_stop_gradient_blocks_target_branch():
    torch.manual_seed(0)
    m = make("simsiam", heads="small")
    v = views()
    # the loss' gradient wrt the (detached) targets is zero: perturbing the target side
    # only through z must not reach the encoder when stop_grad is on
    feats = [m.backbone(x) for x in v]
    zs = [m.projector(f) for f in feats]
    ts = m.targets(v, zs)
    assert all(not t.requires_grad for t in ts)
    m_nosg = make("simsiam", heads="small", stop_grad=False)
    zs2 = [m_nosg.projector(m_nosg.backbone(x)) for x in v]
    assert all(t.requires_grad for t in m_nosg.targets(v, zs2))


def test_simsiam_loss_equals_formula():
    torch.manual_seed(0)
    m = make("simsiam", heads="small").eval()
    v = views()
    out = m(v, 0)
    z = [m.projector(m.backbone(x)) for x in v]
    p = [m.predictor(zi) for zi in z]
    cos = torch.nn.functional.cosine_similarity
    expected = -(cos(p[0], z[1]).mean() + cos(p[1], z[0]).mean()) / 2  # SimSiam eq. 4
    assert torch.allclose(out.loss, expected, atol=1e-5)


def test_multicrop_local_crops_only_predict_the_global_views():
    """2 global + 2 local views: the loss averages the 2 + 4 pairs (i -> global j, i != j), never a local target."""
    torch.manual_seed(0)
    m = make("simsiam", heads="small").eval()
    v = views() + [torch.randn(8, 1, 14, 14), torch.randn(8, 1, 14, 14)]
    out = m(v, 0)
    z = [m.projector(m.backbone(x)) for x in v]
    p = [m.predictor(zi) for zi in z]
    cos = torch.nn.functional.cosine_similarity
    pairs = [(0, 1), (1, 0), (2, 0), (2, 1), (3, 0), (3, 1)]
    expected = -sum(cos(p[i], z[j]).mean() for i, j in pairs) / len(pairs)
    assert torch.allclose(out.loss, expected, atol=1e-5)
    # the all-pairs loss (locals as targets too) is a different number: the test can tell them apart
    every = [(i, j) for i in range(4) for j in range(4) if i != j]
    assert not torch.allclose(out.loss, -sum(cos(p[i], z[j]).mean() for i, j in every) / len(every), atol=1e-4)


def test_multicrop_targets_and_correlation_come_from_the_global_views():
    """BYOL's EMA targets and DirectCopy's correlation EMA see only the global views."""
    torch.manual_seed(0)
    v = views() + [torch.randn(8, 1, 14, 14)]
    m = make("byol", heads="small").eval()
    z = [m.target_projector(m.target_backbone(x)) for x in v[:2]]
    p = [m.predictor(m.projector(m.backbone(x))) for x in v]
    expected = sum(m.loss_fn(p[i], z[j]) for i, j in [(0, 1), (1, 0), (2, 0), (2, 1)]) / 4
    assert torch.allclose(m(v, 0).loss, expected, atol=1e-5)
    d = make("directcopy", heads="small").eval()
    d(v, 0)
    d.after_step(0, 10)
    zs = torch.cat([d.projector(d.backbone(x)) for x in v[:2]]).detach()
    torch.testing.assert_close(d.tracker.F, zs.T @ zs / len(zs), atol=1e-5, rtol=1e-4)


def test_byol_target_gets_no_gradient_and_follows_ema():
    torch.manual_seed(0)
    m = make("byol", heads="small")
    out = m(views(), 0)
    out.loss.backward()
    for p in list(m.target_backbone.parameters()) + list(m.target_projector.parameters()):
        assert p.grad is None and not p.requires_grad
    assert any(p.grad is not None for p in m.backbone.parameters())
    # EMA update: θt ← mθt + (1−m)θo
    before = [p.clone() for p in m.target_backbone.parameters()]
    with torch.no_grad():
        for p in m.backbone.parameters():
            p.add_(1.0)
    ema_update(m.target_backbone, m.backbone, 0.9)
    for b, t, o in zip(before, m.target_backbone.parameters(), m.backbone.parameters()):
        assert torch.allclose(t, 0.9 * b + 0.1 * o, atol=1e-6)


def test_ema_update_matches_loop_and_copies_buffers():
    online = torch.nn.Sequential(torch.nn.Linear(4, 4), torch.nn.BatchNorm1d(4))
    target = make_target(online)
    with torch.no_grad():
        for p in online.parameters():
            p.normal_()
    online(torch.randn(16, 4))  # changes running stats
    expected = [0.99 * t + 0.01 * o for t, o in zip(target.parameters(), online.parameters())]
    ema_update(target, online, 0.99)
    for e, t in zip(expected, target.parameters()):
        assert torch.allclose(e, t)
    assert torch.equal(target[1].running_mean, online[1].running_mean)


def test_cosine_momentum_schedule():
    assert cosine_momentum(0.99, 1.0, 0, 100) == pytest.approx(0.99)
    assert cosine_momentum(0.99, 1.0, 100, 100) == pytest.approx(1.0)
    assert cosine_momentum(0.99, 1.0, 50, 100) == pytest.approx(0.995)


def test_simsiam_predictor_group_has_fixed_lr_and_multiplier():
    m = make("simsiam", heads="small", pred_lr_mult=10.0)
    groups = {g["name"]: g for g in m.param_groups()}
    assert groups["predictor"]["fixed_lr"] is True and groups["predictor"]["lr_mult"] == 10.0
    pred_ids = {id(p) for p in m.predictor.parameters()}
    assert not pred_ids & {id(p) for p in groups["encoder"]["params"]}


@pytest.mark.parametrize("name", sorted(METHODS))
def test_two_step_run_of_every_method(name, tiny, tmp_path):
    cfg = resolve(None, tiny(**{"method.name": name}))
    cfg.method = type(cfg.method)(**{**cfg.method.__dict__, **small_heads(cfg.method)})
    summary = train(cfg)
    rows = [json.loads(line) for line in open(f"{summary['run_dir']}/metrics.jsonl")]
    losses = [r["loss"] for r in rows if "loss" in r]
    assert summary["steps"] == 2 and len(losses) == 2
    assert all(torch.isfinite(torch.tensor(losses)))
    assert 0.0 <= summary["knn_top1"] <= 1.0


def small_heads(method_cfg) -> dict:
    """Shrink heads so the smoke test stays fast, whatever the method's config offers."""
    small = {"proj_hidden": 64, "proj_dim": 32, "pred_hidden": 32}
    return {k: v for k, v in small.items() if hasattr(method_cfg, k)}


def test_simple_method_has_no_predictor_and_both_branches_learn():
    torch.manual_seed(0)
    m = make("simple", heads="small")
    assert not hasattr(m, "predictor") and not m.ema_pairs()
    out = m(views(), 0)
    za, zb = (m.projector(m.backbone(x)) for x in views())
    assert set(out.logs) == {"invariance", "center_penalty"}
    assert out.loss.item() == pytest.approx(0.5 * (out.logs["invariance"].item() + out.logs["center_penalty"].item()),
                                            rel=1e-5)
    with pytest.raises(ValueError, match="2 views"):
        m(views() + views()[:1], 0)
