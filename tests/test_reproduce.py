"""The reproduction machinery and the Wen & Li toy model (``stopgrad reproduce``)."""

from __future__ import annotations

import json

import pytest
import torch

from stopgrad.cli import main
from stopgrad.reproduce import CLAIM_SETS, Claim, ClaimSet, Verdict, run_claim_set
from stopgrad.reproduce import wen_li as wl
from stopgrad.theory.wen_li import Trajectory, WenLiConfig, batch_norm, phi, sample_views, simulate


# ---- the toy model ------------------------------------------------------------------------------
def test_views_are_complementary_masks_of_one_sample():
    cfg = WenLiConfig(d=8, patches=6, feature_patches=2, alpha1=3.0, alpha2=0.5, batch=64)
    X1, X2 = sample_views(cfg, 3, torch.Generator().manual_seed(0))
    assert X1.shape == X2.shape == (3, 64, 3, 8), "each view keeps half of the patches"
    X = torch.cat([X1, X2], dim=2)  # the whole sample, (S, B, P, d)
    is_feat = (X[..., 2:].abs().sum(-1) == 0)  # feature patches live on e1 or e2 only
    assert (is_feat.sum(-1) == 2).all(), "every sample has exactly feature_patches feature patches"
    counts = is_feat[:, :, :3].sum(-1)
    assert set(counts.unique().tolist()) == {0, 1, 2}, "the feature patches are split at random"
    vals = X[..., :2][is_feat]  # (n, 2): exactly one of the two coordinates is ±alpha
    assert set(torch.unique(vals.abs().max(-1).values).tolist()) <= {3.0, 0.5}
    assert ((vals != 0).sum(-1) == 1).all()
    per_sample = (X[..., :2] * is_feat.unsqueeze(-1)).sum(2)  # (S, B, 2): one feature, one shared sign
    assert ((per_sample != 0).sum(-1) == 1).all()
    assert set(torch.unique(per_sample.abs().sum(-1)).tolist()) <= {6.0, 1.0}
    noise = X[~is_feat]
    assert noise.std().item() == pytest.approx(1 / 8 ** 0.5, rel=0.1)
    with pytest.raises(ValueError, match="even"):
        WenLiConfig(patches=7)


def test_phi_is_cubic_and_bn_standardises():
    W = torch.randn(2, 3, 5)
    X = torch.randn(2, 7, 4, 5)
    direct = torch.tensor([[[sum(float(X[s, b, p] @ W[s, j]) ** 3 for p in range(4)) for j in range(3)]
                            for b in range(7)] for s in range(2)])
    assert torch.allclose(phi(W, X), direct.float(), rtol=1e-4, atol=1e-5)
    assert torch.allclose(phi(2 * W, X), 8 * phi(W, X), rtol=1e-4)
    z = batch_norm(torch.randn(2, 50, 3) * 7 + 3, 0.0)
    assert torch.allclose(z.mean(1), torch.zeros(2, 3), atol=1e-5)
    assert torch.allclose(z.pow(2).mean(1), torch.ones(2, 3), atol=1e-4)


@pytest.mark.parametrize("head", ["identity-fixed-diag", "fixed-identity", "random"])
def test_head_constraints_hold_through_training(head):
    cfg = WenLiConfig(d=8, patches=6, feature_patches=2, steps=60, batch=32, log_every=10, lr=0.1,
                      lr_head=0.1, head=head)
    tr = simulate(cfg, seeds=3)
    diag = torch.diagonal(tr.head, dim1=-2, dim2=-1)
    if head == "random":
        assert not torch.equal(tr.head[0], tr.head[-1])
        return
    assert torch.equal(diag, torch.ones_like(diag)), "the diagonal moved"
    if head == "fixed-identity":
        assert torch.equal(tr.head, torch.eye(2).expand_as(tr.head))
    else:
        assert tr.offdiag()[-1].gt(0).all(), "the off-diagonal never trained"
    assert tr.align.shape == (7, 3, 2, 2) and tr.steps[-1] == 60


def test_simulation_depends_on_seed_only():
    cfg = WenLiConfig(d=8, patches=6, feature_patches=2, steps=20, batch=16, log_every=10)
    a, b = simulate(cfg, 2, seed0=1), simulate(cfg, 2, seed0=1)
    assert torch.equal(a.align, b.align)
    assert not torch.equal(a.align, simulate(cfg, 2, seed0=2).align)


def _trajectory(align, head, steps):
    T = len(steps)
    return Trajectory(steps=torch.tensor(steps), align=align, feat=align.clone(), head=head,
                      wnorm=torch.ones(T, 1, 2), loss=torch.zeros(T, 1), cfg=WenLiConfig())


def test_phases_are_read_from_a_known_trajectory():
    # neuron 0 learns v1 at step 2; E[1, 0] peaks at step 4; neuron 1 learns v2 at step 5;
    # the off-diagonal falls below half its peak at step 7.
    steps = list(range(9))
    a0v1 = [0.1, 0.3, 0.6, 0.9, 0.9, 0.9, 0.9, 0.9, 0.9]
    b1v2 = [0.1, 0.1, 0.1, 0.15, 0.3, 0.6, 0.8, 0.9, 0.9]
    e10 = [0.0, 0.0, 0.01, 0.05, 0.1, 0.09, 0.07, 0.04, 0.02]
    align = torch.zeros(9, 1, 2, 2)
    align[:, 0, 0, 0] = torch.tensor(a0v1)
    align[:, 0, 1, 1] = torch.tensor(b1v2)
    head = torch.eye(2).repeat(9, 1, 1, 1)
    head[:, 0, 1, 0] = torch.tensor(e10)
    tr = _trajectory(align, head, steps)
    p = wl.phases(tr, 0)
    assert (p["t1"], p["t2"], p["t3"], p["t4"], p["a"], p["b"]) == (2, 3, 5, 7, 0, 1)
    assert p["ordered"] and p["acceleration"] > 1
    out = wl.outcome(tr)
    assert out.one_each == [True] and out.all_v1 == [False] and out.rise_fall == [True]
    # the same with the head never moving: no substitution, no rise
    tr2 = _trajectory(align, torch.eye(2).repeat(9, 1, 1, 1), steps)
    assert not wl.phases(tr2, 0)["ordered"] and wl.outcome(tr2).rise_fall == [False]


# ---- the machinery ------------------------------------------------------------------------------
def _toy_set(holds: bool):
    claim = Claim(id="c1", source="Thm 0", statement="s", measure="m", criterion="fraction >= 0.5")

    def run(out, seeds, quick, log):
        (out / "fig.png").write_bytes(b"\x89PNG\r\n\x1a\n")
        flags = [holds] * seeds
        return [Verdict(claim, [float(f) for f in flags], holds=sum(flags) / seeds >= 0.5, figures=["fig.png"])], \
            {"k": 1}
    return ClaimSet(name=f"toy-{holds}", paper="P", description="D", run=run, default_seeds=3, quick_seeds=2)


@pytest.mark.parametrize("holds", [True, False])
def test_run_claim_set_writes_claims_and_report(tmp_path, holds, monkeypatch):
    cs = _toy_set(holds)
    monkeypatch.setitem(CLAIM_SETS, cs.name, cs)
    doc = run_claim_set(cs.name, tmp_path, quick=True)
    saved = json.loads((tmp_path / "claims.json").read_text())
    assert saved["seeds"] == 2 and saved["quick"] is True and saved["holds"] == int(holds)
    c = saved["claims"][0]
    assert set(c) >= {"id", "source", "statement", "paper_value", "measured", "criterion", "holds", "figures"}
    assert c["measured"]["n"] == 2 and c["holds"] is holds and doc["total"] == 1
    page = (tmp_path / "report.html").read_text()
    assert "data:image/png;base64," in page and ("holds" if holds else "does not hold") in page


def test_unknown_claim_set_is_named(capsys):
    assert main(["reproduce", "no-such-paper"]) == 2
    assert "wen-li-2022" in capsys.readouterr().err
    assert main(["reproduce", "list"]) == 0
    assert "wen-li-2022" in capsys.readouterr().out


def test_wen_li_quick_writes_consistent_verdicts(tmp_path):
    from stopgrad.reproduce import wen_li_regime as wr

    doc = run_claim_set("wen-li-2022", tmp_path, seeds=2, quick=True, log=lambda s: None)
    assert [c["id"] for c in doc["claims"]] == list(wl.CLAIMS) + list(wr.REGIME_CLAIMS)
    for c in doc["claims"][:len(wl.CLAIMS)]:
        vals = c["measured"]["values"]
        assert len(vals) == 2 and all(v in (0.0, 1.0) for v in vals)
        threshold = wl.RANDOM_HEAD_FRACTION if c["id"] == "random-head" else wl.MIN_FRACTION
        assert c["holds"] == (sum(vals) / 2 >= threshold)
        for f in c["figures"]:
            assert (tmp_path / f).stat().st_size > 5000
    regime = doc["settings"]["regime"]
    points = regime["points"]
    assert len(points) == sum(len(wr.Panel(**{k: p[k] for k in ("name", "axes")}, base=wl.QUICK).points())
                              for p in regime["panels"])
    exists = doc["claims"][len(wl.CLAIMS)]
    assert exists["measured"]["values"] == [1.0 if p["in_region"] else 0.0 for p in points]
    assert exists["holds"] == any(p["in_region"] for p in points)
    for p in points:  # the region rule, recomputed from the recorded fractions
        assert p["in_region"] == (p["trained_one_each"] >= wr.REGIME_TRAINED and p["fixed_all_v1"] >= wr.REGIME_FIXED)
    assert (tmp_path / "regime_phase_diagram.png").stat().st_size > 5000
    assert doc["settings"]["primary"]["d"] == wl.QUICK.d
    assert json.loads((tmp_path / "claims.json").read_text())["claims"][0]["id"] == "thm1-one-neuron-per-feature"


def test_regime_decision_follows_the_preregistered_rule():
    from stopgrad.reproduce import wen_li_regime as wr

    def point(tr, fx, flags):
        return wr.PointResult("p", {"x": tr}, tr, fx, 0.0, 0.0, 0.0, 0.0, 0, [], [
            {"faster": f, "ratio": 2.0 if f else 0.5} for f in flags["faster"]], flags)

    ok = {"one_each": [True] * 5, "fixed_all_v1": [True] * 5, "rise_fall": [True] * 5,
          "ordered": [True, True, True, True, False], "faster": [True, True, True, True, False]}
    bad = {**ok, "ordered": [False] * 5}
    dec = wr.decide([point(0.9, 0.8, ok), point(0.7, 1.0, bad)])  # only the first is in the region
    assert dec["a_holds"] and len(dec["region"]) == 1
    assert dec["b_ordered"] == 0.8 and dec["b_holds"] and dec["c_fraction_faster"] == 0.8 and dec["c_holds"]
    dec = wr.decide([point(0.9, 0.8, bad)])
    assert dec["a_holds"] and not dec["b_holds"]
    dec = wr.decide([point(0.79, 1.0, ok), point(1.0, 0.79, ok)])
    assert not dec["a_holds"] and not dec["b_holds"] and not dec["c_holds"] and dec["b_ordered"] is None


def test_regime_axes_set_the_fields():
    from stopgrad.reproduce import wen_li_regime as wr

    c = wr.apply(wl.PRIMARY, {"alpha1/alpha2": 4.0, "noise/alpha2": 2.0, "lr_head/lr": 0.5, "patches": 8})
    assert c.alpha2 == wl.PRIMARY.alpha1 / 4 and c.noise == 2 * c.alpha2 and c.lr_head == 0.5 * c.lr
    assert c.patches == 8 and c.feature_patches == 2
    with pytest.raises(ValueError, match="unknown axis"):
        wr.apply(wl.PRIMARY, {"temperature": 1.0})


@pytest.mark.parametrize("quick", [True, False])
def test_quick_runs_are_a_smoke_test_in_the_same_words_everywhere(tmp_path, capsys, monkeypatch, quick):
    from stopgrad.reproduce.base import SMOKE_TEST, verdict_words

    cs = _toy_set(False)
    monkeypatch.setitem(CLAIM_SETS, cs.name, cs)
    args = ["reproduce", cs.name, "--out", str(tmp_path)] + (["--quick"] if quick else [])
    assert main(args) == 0
    console = capsys.readouterr().out
    words = verdict_words(False, quick)
    saved = json.loads((tmp_path / "claims.json").read_text())
    page = (tmp_path / "report.html").read_text()
    assert saved["claims"][0]["verdict"] == words and words in console and words in page
    assert (SMOKE_TEST in console and SMOKE_TEST in page and saved["note"] == SMOKE_TEST) is quick
    assert saved["mode"] == ("smoke test" if quick else "full")
    assert ("smoke test" in words) is quick and "FAILS" not in console
