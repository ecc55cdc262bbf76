"""benchmarks/fmnist_neck.py: its pre-registered rule and the two variants it compares."""

from __future__ import annotations

import pytest

from stopgrad.config import resolve
from tests.conftest import load_benchmark


@pytest.fixture(scope="module")
def neck():
    return load_benchmark("fmnist_neck")


def _table(base_knn: float, base_lin: float, cand_knn: float, cand_lin: float, n: int = 2) -> dict:
    return {"plain": {"n": n, "knn_top1": (base_knn, 0.001), "linear_top1": (base_lin, 0.001)},
            "feature-bn": {"n": n, "knn_top1": (cand_knn, 0.001), "linear_top1": (cand_lin, 0.001)}}


def test_rule_adopts_only_a_clear_kNN_gain_that_keeps_the_linear_probe(neck) -> None:
    assert neck.verdict(_table(0.864, 0.914, 0.870, 0.913))["adopt_feature_bn"]
    assert not neck.verdict(_table(0.864, 0.914, 0.867, 0.915))["adopt_feature_bn"]  # +0.003 < 0.004
    assert not neck.verdict(_table(0.864, 0.914, 0.875, 0.910))["adopt_feature_bn"]  # linear -0.004
    v = neck.verdict(_table(0.8641, 0.9139, 0.8700, 0.9140))
    assert v["knn_gain"] == pytest.approx(0.0059) and v["linear_gain"] == pytest.approx(0.0001) and v["seeds"] == 2
    with pytest.raises(SystemExit, match="2 seeds"):
        neck.verdict(_table(0.864, 0.914, 0.870, 0.913, n=1))


def test_the_variants_differ_only_by_the_feature_bn(neck) -> None:
    plain, cand = (resolve(v.preset, list(v.overrides)) for v in neck.VARIANTS)
    assert plain.model.options == {"pool": 3} and cand.model.options == {"pool": 3, "feature_bn": True}
    for cfg in (plain, cand):
        assert cfg.train.epochs == 42 and cfg.data.holdout == 10000 and cfg.method_name == "simsiam"
    cand.model.options = dict(plain.model.options)
    assert cand.to_dict() == plain.to_dict()
