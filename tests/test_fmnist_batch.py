"""benchmarks/fmnist_batch.py: its pre-registered rules and the batches it compares."""

from __future__ import annotations

import pytest

from stopgrad.config import resolve
from tests.conftest import load_benchmark


@pytest.fixture(scope="module")
def batch():
    return load_benchmark("fmnist_batch")


def _row(knn: float, lin: float, ips: float, n: int = 2) -> dict:
    return {"n": n, "knn_top1": (knn, 0.001), "linear_top1": (lin, 0.001), "images_per_s": (ips, 10.0)}


def test_rules_keep_256_unless_a_batch_gains_and_count_equal_accuracy_apart(batch) -> None:
    # 512 the same accuracy and faster, 1024 worse on linear: nothing adopted, 512 counts as equal accuracy
    v = batch.verdict({"batch-256": _row(0.870, 0.910, 1600), "batch-512": _row(0.8695, 0.9095, 1840),
                       "batch-1024": _row(0.871, 0.905, 2000)})
    assert v["adopt"] == "batch-256"
    assert v["variants"]["batch-512"]["equal_accuracy"] and not v["variants"]["batch-1024"]["equal_accuracy"]
    assert v["variants"]["batch-512"]["images_per_s_ratio"] == pytest.approx(1.15)
    # both gain enough: the higher kNN is adopted
    v = batch.verdict({"batch-256": _row(0.870, 0.910, 1600), "batch-512": _row(0.873, 0.910, 1840),
                       "batch-1024": _row(0.875, 0.909, 2000)})
    assert v["adopt"] == "batch-1024" and v["variants"]["batch-512"]["adopt"]
    # a kNN loss beyond the slack is not "equal accuracy", however fast
    v = batch.verdict({"batch-256": _row(0.870, 0.910, 1600), "batch-512": _row(0.867, 0.911, 1840),
                       "batch-1024": _row(0.870, 0.910, 2000)})
    assert not v["variants"]["batch-512"]["equal_accuracy"] and v["variants"]["batch-1024"]["equal_accuracy"]
    with pytest.raises(SystemExit, match="2 seeds"):
        batch.verdict({"batch-256": _row(0.870, 0.910, 1600, n=1), "batch-512": _row(0.873, 0.910, 1840),
                       "batch-1024": _row(0.875, 0.909, 2000)})


def test_the_variants_differ_only_by_the_batch_and_run_for_twenty_minutes_held_out(batch) -> None:
    cfgs = [resolve(v.preset, [*v.overrides, *batch.BASE]) for v in batch.VARIANTS]
    assert [c.data.batch_size for c in cfgs] == [256, 512, 1024]
    for cfg in cfgs:
        assert cfg.train.minutes == 20 and cfg.data.holdout == 10000 and cfg.method_name == "simsiam"
        cfg.data.batch_size = 256
    assert cfgs[1].to_dict() == cfgs[0].to_dict() == cfgs[2].to_dict()
