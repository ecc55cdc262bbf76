"""benchmarks/fmnist_budget.py: its pre-registered rule, and that it keeps measuring what it measured
after the presets adopted its winner (the presets' views and epochs must not leak into its variants)."""

from __future__ import annotations

import pytest

from stopgrad.augment import build_views
from stopgrad.config import resolve
from tests.conftest import load_benchmark


@pytest.fixture(scope="module")
def budget():
    return load_benchmark("fmnist_budget")


def _table(base_knn: float, base_lin: float, cand_knn: float, cand_lin: float, n: int = 3) -> dict:
    return {"views-28-strong": {"n": n, "knn_top1": (base_knn, 0.001), "linear_top1": (base_lin, 0.001)},
            "views-24-solarize": {"n": n, "knn_top1": (cand_knn, 0.001), "linear_top1": (cand_lin, 0.001)}}


def test_rule_adopts_only_a_kNN_gain_that_keeps_the_linear_probe(budget) -> None:
    assert budget.verdict(_table(0.846, 0.906, 0.849, 0.905))["adopt_24px_solarize"]
    assert not budget.verdict(_table(0.846, 0.906, 0.847, 0.906))["adopt_24px_solarize"]  # gain 0.001 < 0.002
    assert not budget.verdict(_table(0.846, 0.906, 0.860, 0.900))["adopt_24px_solarize"]  # linear -0.006
    v = budget.verdict(_table(0.8463, 0.9060, 0.8570, 0.9090))
    assert v["knn_gain"] == pytest.approx(0.0107) and v["linear_gain"] == pytest.approx(0.0030) and v["seeds"] == 3


def test_rule_refuses_fewer_than_three_seeds(budget) -> None:
    with pytest.raises(SystemExit, match="3 seeds"):
        budget.verdict(_table(0.846, 0.906, 0.857, 0.909, n=2))


def _cfg(variant):
    return resolve(variant.preset, list(variant.overrides))


def test_variants_are_the_measured_recipes_whatever_the_presets_now_say(budget) -> None:
    base, cand = (_cfg(v) for v in budget.VARIANTS)
    assert base.data.views == "28-gray-strong" and base.train.epochs == 17
    assert cand.train.epochs == 21  # 17 x 1.25
    assert build_views(cand.data.views, **cand.data.view_overrides).configs == build_views("24-gray-strong").configs


def test_24px_gray_preset_is_the_comparisons_recipe() -> None:
    """The adopted preset is exactly what was measured: 28-gray-strong at 24 px with solarize p 0.2."""
    measured = build_views("28-gray-strong", size=24, solarize_p=0.2).configs
    assert build_views("24-gray-strong").configs == measured
    assert build_views("28-gray-strong").configs != measured
    assert resolve("fashion-mnist/simsiam").data.views == "24-gray-strong"
