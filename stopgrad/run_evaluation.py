"""Frozen-feature evaluation of a run's backbone: the kNN and linear probe of ``cfg.eval``.

The formulas are :mod:`stopgrad.evaluate`'s; this module feeds them a run's splits, views and
precision.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch

from stopgrad import failpoints
from stopgrad.evaluate import extract_features, knn_accuracy, linear_probe

if TYPE_CHECKING:
    from stopgrad.train import Run


def features(run: Run, images: torch.Tensor) -> torch.Tensor:
    return extract_features(run.method.backbone, images, run.views.eval_transform, run.device,
                            run.cfg.eval.batch_size, run.precision, run.cfg.train.channels_last)


def evaluate_knn(run: Run, train_limit: int | None = None, point: str = "final.knn") -> float | None:
    """Weighted kNN top-1 on the labelled test split (k, T from ``cfg.eval``)."""
    if run.test_set is None:
        return None
    labelled = run.train_set.labels >= 0
    images, labels = run.train_set.images[labelled], run.train_set.labels[labelled]
    if train_limit:
        images, labels = images[:train_limit], labels[:train_limit]
    train_f, test_f = features(run, images), features(run, run.test_set.images)
    failpoints.hit(point)
    return knn_accuracy(train_f, labels, test_f, run.test_set.labels, run.cfg.eval.knn_k, run.cfg.eval.knn_t)


def evaluate_linear(run: Run) -> float | None:
    """Linear-probe top-1 on frozen features of the labelled splits."""
    if run.test_set is None:
        return None
    from tqdm import tqdm

    labelled = run.train_set.labels >= 0
    train_f = features(run, run.train_set.images[labelled])
    test_f = features(run, run.test_set.images)
    e = run.cfg.eval
    with tqdm(total=e.linear_epochs, desc="linear probe", disable=not run.cfg.train.progress, leave=False) as bar:
        res = linear_probe(train_f, run.train_set.labels[labelled], test_f, run.test_set.labels, e.linear_epochs,
                           e.linear_lr, e.linear_batch_size, e.linear_weight_decay, seed=run.cfg.train.seed,
                           progress=lambda _: (bar.update(1), failpoints.hit("final.linear")))
    return res.top1
