"""The linear-probe protocol (L2 chosen on held-out training data, refit, test once), the held-out
evaluation split, the online/final kNN rows, and the supervised reference."""

import json
from pathlib import Path

import pytest
import torch

from stopgrad import cli
from stopgrad.config import resolve
from stopgrad.plots import knn_series, plot_runs
from stopgrad.probe import fit_logistic, linear_protocol
from stopgrad.train import load_splits, train
from tests.conftest import load_benchmark


def gaussian_task(n: int, d: int, noise: float, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, d, generator=g)
    w = torch.randn(d, 3, generator=g)
    y = (x @ w).argmax(1)
    flip = torch.rand(n, generator=g) < noise
    y[flip] = torch.randint(0, 3, (int(flip.sum()),), generator=g)
    return x, y


def test_known_answers_separable_and_noise():
    x, y = gaussian_task(3000, 10, 0.0, 0)
    res = linear_protocol(x[:2400], y[:2400], x[2400:], y[2400:])
    assert res.top1 > 0.95 and res.train_top1 > 0.95
    g = torch.Generator().manual_seed(1)
    noise = torch.randint(0, 3, (3000,), generator=g)
    res = linear_protocol(x[:2400], noise[:2400], x[2400:], noise[2400:])
    assert abs(res.top1 - 1 / 3) < 0.06  # chance


def test_penalty_follows_the_data_not_a_constant():
    # few noisy samples in many dimensions: the held-out split asks for a strong penalty
    x, y = gaussian_task(360, 200, 0.3, 2)
    few = linear_protocol(x[:300], y[:300], x[300:], y[300:])
    # many clean samples in few dimensions: a strong penalty underfits, a weak one wins
    x, y = gaussian_task(12000, 20, 0.0, 3)
    many = linear_protocol(x[:10000], y[:10000], x[10000:], y[10000:])
    assert few.l2 >= 1e-2 > many.l2, (few.val_top1, many.val_top1)
    assert many.val_top1[f"{many.l2:g}"] == max(many.val_top1.values())


def test_penalty_path_stops_after_patience_worse_penalties():
    x, y = gaussian_task(360, 200, 0.3, 2)  # a strong penalty wins: the weaker ones score lower
    full = linear_protocol(x[:300], y[:300], x[300:], y[300:], patience=None)
    short = linear_protocol(x[:300], y[:300], x[300:], y[300:], patience=1)
    assert full.extra["searched"] == full.grid and len(short.extra["searched"]) < len(short.grid)
    scores = [short.val_top1[f"{v:g}"] for v in short.extra["searched"]]
    assert scores[-1] < max(scores[:-1]) and all(a <= b for a, b in zip(scores[:-2], scores[1:-1]))
    assert short.l2 == full.l2 and short.top1 == full.top1  # the same choice, found with fewer fits
    with pytest.raises(ValueError, match="patience=0"):
        linear_protocol(x[:300], y[:300], x[300:], y[300:], patience=0)


def test_record_names_protocol_split_and_choice():
    x, y = gaussian_task(1200, 8, 0.1, 4)
    res = linear_protocol(x[:1200], y[:1200], x[:100], y[:100], grid=(1e-1, 1e-3), val_fraction=0.25)
    rec = res.record()
    assert rec["val_images"] == 300 and rec["train_images"] == 1200 and rec["grid"] == [0.1, 0.001]
    assert set(rec["val_top1"]) == {"0.1", "0.001"} and rec["l2"] in (0.1, 0.001)
    assert "held out" in rec["protocol"] and "refit on all 1200" in rec["protocol"]


def test_fit_logistic_reaches_the_optimum():
    """At the L-BFGS solution the penalised loss's gradient vanishes (checked by autograd)."""
    x, y = gaussian_task(800, 6, 0.2, 5)
    w, b, iters = fit_logistic(x, y, 3, l2=1e-2, max_iter=300)
    w.requires_grad_(True), b.requires_grad_(True)
    loss = torch.nn.functional.cross_entropy(x @ w.T + b, y) + 0.5 * 1e-2 * (w * w).sum()
    gw, gb = torch.autograd.grad(loss, (w, b))
    assert gw.abs().max() < 1e-4 and gb.abs().max() < 1e-4 and 0 < iters <= 300


def test_holdout_split_is_the_end_of_train_and_never_trained_on(tiny):
    cfg = resolve(None, tiny(**{"data.holdout": 100}))
    fit, held = load_splits(cfg)
    full, _ = load_splits(resolve(None, tiny()))
    assert len(fit) == 400 and len(held) == 100 and held.split == "train[-100:]"
    assert torch.equal(held.images, full.images[-100:]) and torch.equal(fit.images, full.images[:400])


def test_online_and_final_knn_are_two_series(tiny, tmp_path):
    summary = train(resolve(None, tiny(**{"train.steps": 30, "eval.knn_every": 0.7, "eval.knn_train_limit": 200,
                                          "eval.linear": True, "method.heads": "small"})))
    d = Path(summary["run_dir"])
    rows = [json.loads(line) for line in (d / "metrics.jsonl").read_text().splitlines()]
    online, final = knn_series(rows)
    assert [r["step"] for r in online] == [10, 20] and all(r["knn_train_images"] == 200 for r in online)
    assert len(final) == 1 and final[0]["step"] == 30 and final[0]["knn_train_images"] == 500
    assert not any("knn_top1" in r and not r.get("final") for r in rows)  # never under the final's name
    assert summary["linear"]["l2"] in summary["linear"]["grid"] and summary["eval_split"] == "test"
    assert "knn_top1.png" in {p.name for p in plot_runs([d], tmp_path / "plots")}
    # benchmarks/accuracy_vs_minutes.py puts each online point at its share of the training wall time
    avm = load_benchmark("accuracy_vs_minutes")
    pts, last = avm.points(d)
    minutes = summary["wall_s"] / 60
    assert [round(m / minutes * 30) for m, _ in pts] == [10, 20] and last == (minutes, summary["knn_top1"])
    assert [a for _, a in pts] == [r["knn_online_top1"] for r in online]


def test_final_evaluation_extracts_features_once_and_records_its_cost(tiny, monkeypatch):
    """The final kNN and the linear probe share one extraction per split; the online kNN keeps none."""
    from stopgrad import run_evaluation

    calls, real = [], run_evaluation.features
    monkeypatch.setattr(run_evaluation, "features", lambda run, images: calls.append((run.step, len(images)))
                        or real(run, images))
    summary = train(resolve(None, tiny(**{"train.steps": 20, "eval.knn_every": 0.5, "eval.knn_train_limit": 200,
                                          "eval.linear": True, "method.heads": "small"})))
    # online kNN at steps 8 and 16 (its own bank of 200, 200 test images), then the final evaluation once
    assert calls == [(8, 200), (8, 200), (16, 200), (16, 200), (20, 500), (20, 200)], calls
    assert summary["knn_s"] > 0 and summary["linear_s"] > 0 and summary["knn_online_s"] > 0
    rounding = 0.011 / summary["wall_s"] + 1e-4  # the seconds are rounded to 0.01 s, the fractions to 1e-4
    assert summary["knn_online_fraction"] == pytest.approx(summary["knn_online_s"] / summary["wall_s"], abs=rounding)
    assert summary["eval_fraction"] == pytest.approx((summary["knn_s"] + summary["linear_s"]) / summary["wall_s"],
                                                     abs=rounding)


def test_eval_pixels_and_random_init_baselines(tiny, capsys):
    summary = train(resolve(None, tiny(**{"method.heads": "small"})))
    d = summary["run_dir"]
    assert cli.main(["eval", "knn", d, "--pixels"]) == 0
    assert cli.main(["eval", "linear", d, "--pixels"]) == 0
    assert cli.main(["eval", "linear", d, "--random-init"]) == 0
    out = capsys.readouterr().out
    assert "pixels_knn_top1 = " in out and "L2 penalty" in out
    s = json.loads((Path(d) / "summary.json").read_text())
    assert s["pixels_linear"]["features"] == "pixels" and s["random_init_linear"]["features"] == "backbone"
    assert 0.3 < s["pixels_knn_top1"] <= 1 and s["pixels_linear_top1"] > 0.3


def test_eval_knn_per_class_breaks_down_the_same_top1(tiny, capsys):
    from stopgrad.evaluate import confusion_matrix

    assert confusion_matrix(torch.tensor([0, 2, 1, 1]), torch.tensor([0, 1, 1, 2]), 3).tolist() == \
        [[1, 0, 0], [0, 1, 1], [0, 1, 0]]
    summary = train(resolve(None, tiny(**{"method.heads": "small"})))
    d = summary["run_dir"]
    assert cli.main(["eval", "knn", d, "--pixels", "--per-class"]) == 0
    out = capsys.readouterr().out
    s = json.loads((Path(d) / "summary.json").read_text())
    b = s["pixels_knn_per_class"]
    conf = torch.tensor(b["confusion"])
    assert conf.shape == (len(b["classes"]),) * 2 and (conf.sum(1) == 20).all()  # every test image once
    assert s["pixels_knn_top1"] == pytest.approx(conf.diag().sum().item() / conf.sum().item())
    plain = cli.main(["eval", "knn", d, "--pixels", "--out", str(Path(d) / "plain.json")])
    assert plain == 0 and json.loads((Path(d) / "plain.json").read_text())["pixels_knn_top1"] == s["pixels_knn_top1"]
    worst = min(b["per_class_top1"], key=lambda n: b["per_class_top1"][n])
    assert out.splitlines()[2].split()[0] == worst  # the table opens with the worst class
    assert cli.main(["eval", "linear", d, "--per-class"]) == 2


def test_per_class_table_lists_worst_first_and_empty_classes_last():
    from stopgrad.commands import per_class_table

    b = {"classes": ["a", "b", "c"], "per_class_top1": {"a": 0.9, "b": None, "c": 0.5},
         "confusion": [[9, 0, 1], [0, 0, 0], [1, 0, 1]]}
    rows = [line.split()[0] for line in per_class_table(b).splitlines()[1:]]
    assert rows == ["c", "a", "b"]  # 0.5, then 0.9; the class without test images is not the "worst"
    assert "a (1 of 2)" in per_class_table(b)


def test_supervised_reference_learns_with_labels(tiny):
    from stopgrad.train import evaluate_knn, load_run

    summary = train(resolve(None, tiny(**{"method.name": "supervised", "train.steps": 60, "optim.lr": 0.5})))
    rows = [json.loads(line) for line in (Path(summary["run_dir"]) / "metrics.jsonl").read_text().splitlines()]
    accs = [r["train_top1"] for r in rows if "train_top1" in r]
    assert sum(accs[-10:]) > sum(accs[:10])
    untrained = evaluate_knn(load_run(summary["run_dir"], random_init=True))
    assert summary["knn_top1"] > untrained + 0.1, (summary["knn_top1"], untrained)


@pytest.mark.slow
def test_pixels_of_fashion_mnist_give_the_known_answer():
    """Logistic regression on Fashion-MNIST pixels is known to reach about 0.84-0.85 on the test set."""
    from stopgrad.data import load_dataset

    tr, te = load_dataset("fashion-mnist", "train"), load_dataset("fashion-mnist", "test")
    res = linear_protocol(tr.images.flatten(1).float() / 255, tr.labels, te.images.flatten(1).float() / 255,
                          te.labels)
    assert 0.835 < res.top1 < 0.86 and res.l2 == 1e-3
