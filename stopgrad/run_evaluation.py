"""Frozen-feature evaluation of a run's backbone: the kNN and linear probe of ``cfg.eval``.

The formulas are :mod:`stopgrad.evaluate`'s; this module feeds them a run's splits, views and
precision.
"""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Any

import torch

from stopgrad import failpoints
from stopgrad.evaluate import confusion_matrix, extract_features, knn_accuracy, knn_predict, linear_probe
from stopgrad.probe import linear_protocol

if TYPE_CHECKING:
    from stopgrad.build import Run


SOURCES = ("backbone", "pixels")


def features(run: Run, images: torch.Tensor) -> torch.Tensor:
    return extract_features(run.method.backbone, images, run.views.eval_transform, run.device,
                            run.cfg.eval.batch_size, run.precision, run.cfg.train.channels_last)


def features_of(run: Run, images: torch.Tensor, source: str = "backbone") -> torch.Tensor:
    """Backbone features, or the raw pixels scaled to [0, 1] (``source="pixels"``, the baseline)."""
    if source == "pixels":
        return images.flatten(1).float() / 255.0
    if source != "backbone":
        raise ValueError(f"source={source!r}: expected one of {SOURCES}")
    return features(run, images)


def split_features(run: Run, split: str, limit: int | None, source: str, keep: bool = True) -> torch.Tensor:
    """Features of the labelled training split (its first ``limit``) or of the test split, at this step.

    With ``keep`` they stay in ``run.feature_cache`` until the step moves on, so the final kNN and
    the linear probe extract them once (Fashion-MNIST's 70,000 images take 8-25 s on this CPU).
    """
    key = (run.step, split, limit, source)
    if key in run.feature_cache:
        return run.feature_cache[key]
    run.feature_cache = {k: v for k, v in run.feature_cache.items() if k[0] == run.step}
    images = run.test_set.images if split == "test" else labelled_train(run)[0][:limit or None]
    feats = features_of(run, images, source)
    if keep:
        run.feature_cache[key] = feats
    return feats


def announce(run: Run, text: str) -> None:
    """One line on the console before a long evaluation (with ``train.progress``), above any bar."""
    if run.cfg.train.progress:
        from tqdm import tqdm

        tqdm.write(f"stopgrad: {text}", file=sys.stderr)


def labelled_train(run: Run) -> tuple[torch.Tensor, torch.Tensor]:
    labelled = run.train_set.labels >= 0
    return run.train_set.images[labelled], run.train_set.labels[labelled]


def knn_inputs(run: Run, kind: str, source: str, train_limit: int | None = None,
               keep: bool = True) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Announce a kNN evaluation and return its bank features, bank labels and test features."""
    assert run.test_set is not None
    _, labels = labelled_train(run)
    labels = labels[:train_limit or None]
    announce(run, f"{kind} ({source} features): a bank of {len(labels):,} training images, {len(run.test_set):,} "
                  f"{run.test_set.split} images to classify, k={run.cfg.eval.knn_k}, T={run.cfg.eval.knn_t}")
    return (split_features(run, "train", train_limit, source, keep), labels,
            split_features(run, "test", None, source, keep))


def evaluate_knn(run: Run, train_limit: int | None = None, point: str = "final.knn",
                 source: str = "backbone") -> float | None:
    """Weighted kNN top-1 on the labelled test split (k, T from ``cfg.eval``)."""
    if run.test_set is None:
        return None
    online = point == "knn.online"  # the online kNN's step is never evaluated again: nothing kept
    train_f, labels, test_f = knn_inputs(run, "online kNN" if online else "final kNN", source, train_limit,
                                         keep=not online)
    failpoints.hit(point)
    return knn_accuracy(train_f, labels, test_f, run.test_set.labels, run.cfg.eval.knn_k, run.cfg.eval.knn_t)


def knn_per_class(run: Run, source: str = "backbone") -> dict[str, Any] | None:
    """The final kNN's breakdown: top-1 of each class and the confusion matrix (rows: true class).

    Same protocol and features as :func:`evaluate_knn` (full labelled training split as the bank).
    """
    if run.test_set is None:
        return None
    names = list(run.test_set.classes)
    train_f, labels, test_f = knn_inputs(run, "final kNN per class", source)
    scores = knn_predict(train_f, labels, test_f, len(names), run.cfg.eval.knn_k, run.cfg.eval.knn_t)
    conf = confusion_matrix(scores.argmax(1), run.test_set.labels, len(names))
    per_class = {n: (conf[i, i] / conf[i].sum()).item() if conf[i].sum() else None for i, n in enumerate(names)}
    return {"classes": names, "per_class_top1": per_class, "confusion": conf.tolist(),
            "top1": (conf.diag().sum() / conf.sum()).item()}


def evaluate_linear(run: Run, source: str = "backbone") -> dict[str, Any] | None:
    """The linear probe of ``cfg.eval.linear_protocol`` on frozen features of the labelled splits.

    Returns ``{"linear_top1": top-1, "linear": {protocol, chosen values, ...}}`` for ``summary.json``:
    ``val-lbfgs`` (default) is :func:`stopgrad.probe.linear_protocol`, ``sgd`` the fixed-epoch SGD
    probe of :func:`stopgrad.evaluate.linear_probe`.
    """
    if run.test_set is None:
        return None
    from tqdm import tqdm

    images, labels = labelled_train(run)
    e = run.cfg.eval
    if e.linear_protocol == "val-lbfgs":
        held = max(1, round(len(images) * e.linear_val_fraction))
        announce(run, f"linear probe ({source} features): L2 penalty chosen from {list(e.linear_l2_grid)} on the "
                      f"last {held:,} of {len(images):,} training images, refit on all, then {len(run.test_set):,} "
                      f"{run.test_set.split} images (a few minutes on a CPU)")
    else:
        announce(run, f"linear probe ({source} features): {e.linear_epochs} SGD epochs on {len(images):,} training "
                      f"images, then {len(run.test_set):,} {run.test_set.split} images")
    train_f, test_f = split_features(run, "train", None, source), split_features(run, "test", None, source)
    if e.linear_protocol == "val-lbfgs":
        with tqdm(total=len(e.linear_l2_grid) + 1, desc="linear probe (L2 search)", leave=False,
                  disable=not run.cfg.train.progress) as bar:
            def step(message: str) -> None:
                bar.update(1)
                bar.set_postfix_str(message)
                failpoints.hit("final.linear")

            res = linear_protocol(train_f, labels, test_f, run.test_set.labels, grid=e.linear_l2_grid,
                                  val_fraction=e.linear_val_fraction, progress=step)
        return {"linear_top1": res.top1, "linear": {"features": source, **res.record()}}
    with tqdm(total=e.linear_epochs, desc="linear probe", disable=not run.cfg.train.progress, leave=False) as bar:
        sgd = linear_probe(train_f, labels, test_f, run.test_set.labels, e.linear_epochs, e.linear_lr,
                           e.linear_batch_size, e.linear_weight_decay, seed=run.cfg.train.seed,
                           progress=lambda _: (bar.update(1), failpoints.hit("final.linear")))
    return {"linear_top1": sgd.top1, "linear": {
        "features": source, "protocol": "SGD on standardised frozen features, fixed epochs, no validation",
        "epochs": e.linear_epochs, "lr": e.linear_lr, "batch_size": e.linear_batch_size,
        "weight_decay": e.linear_weight_decay, "train_top1": sgd.train_top1}}
