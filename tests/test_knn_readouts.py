"""benchmarks/knn_readouts.py: its standard readout is the project's kNN, and the others read what
they say (the taps see the right layers, before the in-place ReLU; centring and standardising use
the bank's statistics only; no hook is left behind)."""

from __future__ import annotations

import pytest
import torch

from stopgrad.config import resolve
from stopgrad.train import evaluate_knn, load_run, train
from tests.conftest import load_benchmark


@pytest.fixture(scope="module")
def readouts():
    return load_benchmark("knn_readouts")


@pytest.mark.parametrize("pool_first", [False, True])
def test_taps_read_the_layers_they_name(tiny, readouts, pool_first):
    summary = train(resolve(None, tiny(**{"model.options": f"{{pool: 3, pool_first: {str(pool_first).lower()}}}",
                                          "train.steps": 4, "train.precision": "fp32"})))
    run = load_run(summary["run_dir"])
    images = run.test_set.images[:64]
    feats = readouts.readout_features(run, images)
    backbone = run.method.backbone.eval()
    assert not any(m._forward_hooks for m in backbone.modules())  # the taps are removed afterwards
    with torch.no_grad():
        x = run.views.eval_transform(images)
        block3 = torch.nn.functional.adaptive_avg_pool2d(backbone.features[:-3](x), 3).flatten(1)
        last = backbone.features[-3]
        pre = last[1](last[0](backbone.features[:-3](x))).flatten(1)  # conv, BN: before the ReLU
        out = backbone(x)
    assert torch.allclose(feats["out"], out, atol=1e-5)
    assert torch.allclose(feats["block3"], block3, atol=1e-5) and torch.allclose(feats["pre-relu"], pre, atol=1e-5)
    assert feats["pre-relu"].min() < 0 and torch.allclose(feats["pre-relu"].clamp(min=0), feats["out"], atol=1e-6)


def test_standard_readout_is_the_projects_knn(tiny, readouts):
    summary = train(resolve(None, tiny(**{"model.options": "{pool: 3}", "train.steps": 6})))
    acc = readouts.readout_accuracies(load_run(summary["run_dir"]))
    assert list(acc) == list(readouts.READOUTS) and all(0 <= v <= 1 for v in acc.values())
    assert acc["standard"] == pytest.approx(evaluate_knn(load_run(summary["run_dir"])), abs=1e-6)


def test_normalisation_uses_the_bank_only(readouts):
    bank = torch.tensor([[1.0, 10.0], [3.0, 30.0]])  # mean (2, 20), std (1.41, 14.1)
    queries = torch.tensor([[5.0, 5.0]])
    b, q = readouts.normalised(bank, queries, "centred")
    assert torch.equal(q, torch.tensor([[3.0, -15.0]])) and torch.equal(b, torch.tensor([[-1.0, -10.0], [1.0, 10.0]]))
    b, q = readouts.normalised(bank, queries, "standardised")
    assert torch.allclose(q, torch.tensor([[3.0, -15.0]]) / bank.std(0), atol=1e-5)
    assert torch.allclose(b.std(0), torch.ones(2), atol=1e-5)
    assert readouts.normalised(bank, queries, "as-is") == (bank, queries)
    with pytest.raises(ValueError, match="how='whiten'"):
        readouts.normalised(bank, queries, "whiten")


def test_a_backbone_without_taps_gets_the_three_normalisations(tiny, readouts):
    summary = train(resolve(None, tiny(**{"model.backbone": "mlp", "train.steps": 2})))
    acc = readouts.readout_accuracies(load_run(summary["run_dir"]))
    assert list(acc) == ["standard", "centred", "standardised"] and all(0 <= v <= 1 for v in acc.values())


def test_unfinished_or_missing_runs_get_one_line(tmp_path, readouts, monkeypatch, capsys):
    (tmp_path / "half").mkdir()
    (tmp_path / "half" / "config.yaml").write_text("{}\n")
    for folder, words in ((tmp_path / "half", "not a finished run"), (tmp_path / "absent", "does not exist")):
        monkeypatch.setattr("sys.argv", ["knn_readouts.py", str(folder)])
        with pytest.raises(SystemExit, match=words) as e:
            readouts.main()
        assert "\n" not in str(e.value)


def test_random_init_reads_the_untrained_backbone_and_a_fresh_feature_bn_passes_features_through(
        tiny, readouts, tmp_path, monkeypatch):
    neck = train(resolve(None, tiny(**{"model.options": "{pool: 3, feature_bn: true}", "train.steps": 6,
                                       "train.name": "neck"})))
    plain = train(resolve(None, tiny(**{"model.options": "{pool: 3}", "train.steps": 6, "train.name": "plain"})))
    out = tmp_path / "acc.json"
    monkeypatch.setattr("sys.argv", ["knn_readouts", neck["run_dir"], "--random-init", "--out", str(out)])
    readouts.main()
    acc = __import__("json").loads(out.read_text())[neck["run_dir"]]
    # same seed, so the same random weights; the untrained BN's running statistics (0 and 1) change no cosine
    assert acc["standard"] == pytest.approx(evaluate_knn(load_run(plain["run_dir"], random_init=True)), abs=1e-6)
    trained = load_run(neck["run_dir"]).method.backbone.neck
    assert trained.num_batches_tracked > 0 and not torch.allclose(trained.running_var, torch.ones_like(trained.running_var))
