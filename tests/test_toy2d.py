"""Jha et al. toy settings (``stopgrad.theory.toy2d``) and the ``jha-2023`` claim set (quick form)."""

from __future__ import annotations

import json

import pytest
import torch
import torch.nn.functional as F

from stopgrad.config import resolve
from stopgrad.reproduce import jha, run_claim_set
from stopgrad.theory.toy2d import (InvarianceConfig, ToyConfig, build_toy_method, invariance_run, knn_acc,
                                   linear_probe_acc, toy_points, train_toy)


@pytest.mark.parametrize("name", ["blobs", "moons"])
def test_toy_points_three_balanced_classes(name):
    x, y = toy_points(name, 300, torch.Generator().manual_seed(0))
    assert x.shape == (300, 2) and torch.bincount(y).tolist() == [100, 100, 100]
    means = torch.stack([x[y == c].mean(0) for c in range(3)])
    assert torch.cdist(means, means).add(torch.eye(3) * 99).min() > 0.5, "class centres must differ"
    with pytest.raises(ValueError, match="toy set"):
        toy_points("circles", 10, torch.Generator())


def test_probes_tell_collapse_from_structure():
    x, y = toy_points("blobs", 600, torch.Generator().manual_seed(0))
    healthy = F.normalize(F.pad(x, (0, 6)), dim=1)
    collapsed = F.normalize(torch.ones(600, 8) + 1e-3 * F.pad(x, (0, 6)), dim=1)
    assert linear_probe_acc(healthy, y) > 0.95 and knn_acc(healthy, y) > 0.95
    # accuracy is blind to scale (documented): the collapse shows in the center and the std instead
    assert linear_probe_acc(collapsed, y) > 0.9
    assert collapsed.mean(0).norm() > 0.99 and collapsed.std(0).mean() < 0.01
    assert healthy.mean(0).norm() < 0.5 and healthy.std(0).mean() > 0.1
    shuffled = y[torch.randperm(600, generator=torch.Generator().manual_seed(1))]
    assert linear_probe_acc(healthy, shuffled) < 0.5, "labels unrelated to z must score near chance"


def test_toy_networks_have_no_bn_outside_the_predictor():
    for variant in ("simsiam", "no-predictor", "no-stopgrad", "simple"):
        m = build_toy_method(variant, ToyConfig())
        bns = [n for n, mod in m.named_modules() if isinstance(mod, torch.nn.BatchNorm1d)]
        assert all(n.startswith("predictor") for n in bns), bns


def test_no_predictor_collapses_and_simple_does_not_on_blobs():
    cfg = ToyConfig(points=300, steps=300, eval_every=300)
    collapsed = train_toy("blobs", "no-predictor", 0, cfg)
    simple = train_toy("blobs", "simple", 0, cfg)
    assert collapsed.center[-1] > 0.9 and collapsed.dim_std[-1] < 0.05
    assert simple.center[-1] < 0.3 and simple.dim_std[-1] > 0.1
    assert collapsed.steps == [0, 300]


def test_invariance_only_collapses_and_counts_updates():
    mini = invariance_run("biased", "mini", 0, InvarianceConfig(epochs=30))
    full = invariance_run("biased", "full", 0, InvarianceConfig(epochs=3))
    assert mini.updates[1] == 20 and full.updates[-1] == 3  # 1000 samples / 50 per batch
    assert mini.center[-1] > 0.99 > mini.center[0]
    with pytest.raises(ValueError, match="augmentation"):
        invariance_run("shifted", "mini", 0)


def test_jha_quick_writes_consistent_verdicts(tmp_path):
    doc = run_claim_set("jha-2023", tmp_path, seeds=1, quick=True, log=lambda s: None)
    assert [c["id"] for c in doc["claims"]] == list(jha.CLAIMS)
    by_id = {c["id"]: c for c in doc["claims"]}
    for cid in ("toy-collapse", "invariance-only-collapses", "minibatch-collapses-faster"):
        vals = by_id[cid]["measured"]["values"]
        assert by_id[cid]["holds"] == (sum(vals) / len(vals) >= jha.MIN_FRACTION)
    diffs = by_id["simple-matches-simsiam"]["measured"]["values"]
    assert len(diffs) == 2 and by_id["simple-matches-simsiam"]["holds"] == all(d >= -jha.MATCH_MARGIN for d in diffs)
    assert by_id["invariance-only-collapses"]["measured"]["n"] == 4
    for f in ("toy-curves.png", "toy-data.png", "invariance-b1.png"):
        assert (tmp_path / f).stat().st_size > 5000
    assert "jha-2023" in (tmp_path / "report.html").read_text()


def test_jha_fmnist_quick_runs_the_grid_and_writes_verdicts(tmp_path):
    from stopgrad.reproduce import jha_fmnist

    doc = run_claim_set("jha-2023-fmnist", tmp_path, seeds=1, quick=True, log=lambda s: None, views="28-gray",
                        backbone="feature-bn")
    assert [c["id"] for c in doc["claims"]] == list(jha_fmnist.CLAIMS)
    written = json.loads((tmp_path / "claims.json").read_text())
    assert (written["views"], written["backbone"]) == ("28-gray", "feature-bn")
    for v in jha_fmnist.variants(quick=True):
        summary = (tmp_path / "runs" / v.name / "seed0" / "summary.json")
        assert summary.exists(), v.name
        config = (summary.parent / "config.yaml").read_text()
        assert "views: 28-gray\n" in config  # --views reached every run
        assert "feature_bn: true" in config  # and so did --backbone
    ordered = {c["id"]: c for c in doc["claims"]}["predlr-accuracy-rises"]
    assert ordered["holds"] == all(d > 0 for d in ordered["measured"]["values"])
    assert (tmp_path / "jha-fmnist.png").stat().st_size > 5000
    full = jha_fmnist.variants(quick=False)
    assert {v.name for v in full} == set(jha_fmnist.PRED_LR) | set(jha_fmnist.EMA)
    assert all("eval.linear=true" in v.overrides and "data.views=24-gray-strong" in v.overrides for v in full)
    assert all(resolve(v.preset, list(v.overrides)).model.options == {"pool": 3} for v in full)  # plain by default


def test_reproduce_views_are_checked_before_anything_runs(tmp_path, capsys):
    from stopgrad.cli import main

    assert main(["reproduce", "wang-2021", "--views", "24-gray-strong", "--out", str(tmp_path / "a")]) == 2
    assert main(["reproduce", "jha-2023-fmnist", "--views", "24-grey", "--out", str(tmp_path / "b")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 2 and "Traceback" not in "".join(err)
    assert "wang-2021 does not take --views" in err[0] and "drop --views" in err[0]
    assert "--views 24-grey: no such view preset" in err[1] and "24-gray-strong" in err[1]
    assert not (tmp_path / "a").exists() and not (tmp_path / "b").exists()
    assert main(["reproduce", "wang-2021", "--backbone", "feature-bn", "--out", str(tmp_path / "c")]) == 2
    assert main(["reproduce", "jha-2023-fmnist", "--backbone", "featurebn", "--out", str(tmp_path / "d")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 2 and "Traceback" not in "".join(err)
    assert "wang-2021 does not take --backbone" in err[0] and "drop --backbone" in err[0]
    assert "--backbone featurebn: no such backbone" in err[1] and "feature-bn, plain" in err[1]
    assert not (tmp_path / "c").exists() and not (tmp_path / "d").exists()
    assert main(["reproduce", "list"]) == 0
    listed = capsys.readouterr().out
    assert "[views 24-gray-strong] [backbone plain]" in listed
