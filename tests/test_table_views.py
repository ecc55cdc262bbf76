"""The predictor-family and method-family grids train one pinned view preset, chosen by ``--views``,
and one pinned ConvNet, chosen by ``--backbone``."""

from __future__ import annotations

import sys

import pytest

from stopgrad.config import resolve
from tests.conftest import load_benchmark

TABLES = ("predictor_table", "family_table")


@pytest.mark.parametrize("name", TABLES)
def test_every_variant_pins_the_presets_views_by_default(name):
    mod = load_benchmark(name)
    variants = mod.variants()
    assert len({v.name for v in variants}) == len(variants) > 1
    for v in variants:
        assert "data.views=24-gray-strong" in v.overrides
        cfg = resolve(v.preset, list(v.overrides))
        assert cfg.data.views == "24-gray-strong"


@pytest.mark.parametrize("name", TABLES)
def test_views_option_reaches_every_variant(name):
    mod = load_benchmark(name)
    variants = mod.variants("28-gray-strong")
    assert all(resolve(v.preset, list(v.overrides)).data.views == "28-gray-strong" for v in variants)


@pytest.mark.parametrize("name", TABLES)
def test_an_unknown_view_preset_stops_before_any_run(name, tmp_path, monkeypatch):
    mod = load_benchmark(name)
    monkeypatch.setattr(sys, "argv", [name, "--out", str(tmp_path / "grid"), "--views", "32-nope", "--seeds", "0"])
    with pytest.raises(SystemExit) as e:
        mod.main()
    assert "32-nope" in str(e.value) and "error: variant" in str(e.value)
    assert not (tmp_path / "grid").exists()


@pytest.mark.parametrize("name", TABLES)
def test_backbone_option_reaches_every_variant(name):
    mod = load_benchmark(name)
    plain = [resolve(v.preset, list(v.overrides)).model.options for v in mod.variants()]
    neck = [resolve(v.preset, list(v.overrides)).model.options for v in mod.variants(backbone="feature-bn")]
    assert plain == [{"pool": 3}] * len(plain)  # the published tables' ConvNet stays the default
    assert neck == [{"pool": 3, "feature_bn": True}] * len(neck)


@pytest.mark.parametrize("name", TABLES)
def test_an_unknown_backbone_stops_before_any_run(name, tmp_path, monkeypatch, capsys):
    mod = load_benchmark(name)
    monkeypatch.setattr(sys, "argv", [name, "--out", str(tmp_path / "grid"), "--backbone", "resnet", "--seeds", "0"])
    with pytest.raises(SystemExit):
        mod.main()
    assert "invalid choice: 'resnet'" in capsys.readouterr().err
    assert not (tmp_path / "grid").exists()
