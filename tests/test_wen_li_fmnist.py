"""wen-li-2022-fmnist: the rise-and-fall rule, and the quick grid end to end."""

from __future__ import annotations

import json

from stopgrad.reproduce import run_claim_set, wen_li_fmnist
from stopgrad.reproduce.wen_li_fmnist import rises_and_falls


def test_rise_and_fall_rule():
    assert rises_and_falls([0.01, 0.5, 1.0, 0.7])  # rises 100x, ends at 0.7 of the peak
    assert not rises_and_falls([0.01, 0.5, 1.0, 0.9])  # no fall: 0.9 > 0.8 of the peak
    assert not rises_and_falls([0.01, 0.5, 1.0])  # the peak is the last value
    assert not rises_and_falls([1.0, 1.5, 0.5])  # rises only 1.5x
    assert not rises_and_falls([0.1, 0.5])  # too short to tell


def test_quick_grid_writes_trajectories_verdicts_and_figure(tmp_path):
    doc = run_claim_set("wen-li-2022-fmnist", tmp_path, seeds=1, quick=True, log=lambda s: None)
    assert [c["id"] for c in doc["claims"]] == list(wen_li_fmnist.CLAIMS)
    for name in wen_li_fmnist.HEADS:
        assert json.loads((tmp_path / "runs" / name / "seed0" / "summary.json").read_text())["knn_top1"] > 0
    steps, values = wen_li_fmnist.trajectory(tmp_path / "runs" / "fixed-diagonal" / "seed0", "diag/offdiag_norm")
    assert len(values) >= 3 and steps == sorted(steps)
    rise = {c["id"]: c for c in doc["claims"]}["fmnist-fixed-diagonal-rise-fall"]
    assert rise["measured"]["values"] == [1.0 if rises_and_falls(values) else 0.0]
    assert rise["holds"] == (rise["measured"]["mean"] >= wen_li_fmnist.MIN_FRACTION)
    assert (tmp_path / "wen-li-fmnist.png").stat().st_size > 5000
    full = wen_li_fmnist.variants(quick=False)
    assert all("data.dataset=synthetic" not in v.overrides and f"train.epochs={wen_li_fmnist.EPOCHS}" in v.overrides
               for v in full)
