"""Frozen-feature evaluation: weighted kNN and a linear probe.

The kNN follows Wu et al. 2018 (instance discrimination) as solo-learn and lightly report it:
cosine similarity of L2-normalised backbone features, the k = 200 nearest training samples vote
with weight ``exp(sim / T)``, T = 0.1.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable

import torch
import torch.nn.functional as F
from torch import nn

from stopgrad.precision import autocast


@torch.no_grad()
def extract_features(backbone: nn.Module, images: torch.Tensor, transform: Callable[[torch.Tensor], torch.Tensor],
                     device: torch.device, batch_size: int = 1024, precision: str = "fp32",
                     channels_last: bool = False) -> torch.Tensor:
    """Backbone features ``(N, F)`` (float32, on CPU) of uint8 ``images`` in eval mode.

    The backbone's train/eval mode is restored afterwards.
    """
    was_training = backbone.training
    backbone.eval()
    out = []
    for start in range(0, len(images), batch_size):
        x = transform(images[start:start + batch_size].to(device, non_blocking=True))
        if channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        with autocast(device, precision):
            out.append(backbone(x).float().cpu())
    backbone.train(was_training)
    return torch.cat(out)


@torch.no_grad()
def knn_predict(train_feats: torch.Tensor, train_labels: torch.Tensor, test_feats: torch.Tensor,
                num_classes: int, k: int = 200, temperature: float = 0.1, chunk: int = 1024) -> torch.Tensor:
    """Weighted kNN class scores ``(M, C)`` (Wu et al. 2018, eq. 8 with ``exp(s/T)`` weights)."""
    train = F.normalize(train_feats.float(), dim=1)
    test = F.normalize(test_feats.float(), dim=1)
    k = min(k, len(train))
    scores = []
    for start in range(0, len(test), chunk):
        sim = test[start:start + chunk] @ train.T  # (m, N)
        top_sim, top_idx = sim.topk(k, dim=1)  # (m, k)
        weights = (top_sim / temperature).exp()
        votes = torch.zeros(len(top_sim), num_classes)
        votes.scatter_add_(1, train_labels[top_idx], weights)
        scores.append(votes)
    return torch.cat(scores)


def knn_accuracy(train_feats: torch.Tensor, train_labels: torch.Tensor, test_feats: torch.Tensor,
                 test_labels: torch.Tensor, k: int = 200, temperature: float = 0.1) -> float:
    """Top-1 accuracy of :func:`knn_predict`."""
    num_classes = int(max(train_labels.max(), test_labels.max())) + 1
    pred = knn_predict(train_feats, train_labels, test_feats, num_classes, k, temperature).argmax(1)
    return (pred == test_labels).float().mean().item()


def confusion_matrix(pred: torch.Tensor, labels: torch.Tensor, num_classes: int) -> torch.Tensor:
    """``(C, C)`` counts: row = true class, column = predicted class.

    Examples:
        >>> confusion_matrix(torch.tensor([0, 1, 1]), torch.tensor([0, 0, 1]), 2).tolist()
        [[1, 1], [0, 1]]
    """
    flat = labels.long() * num_classes + pred.long()
    return torch.bincount(flat, minlength=num_classes * num_classes).view(num_classes, num_classes)


@dataclass
class LinearProbeResult:
    top1: float
    train_top1: float
    epochs: int


def linear_probe(train_feats: torch.Tensor, train_labels: torch.Tensor, test_feats: torch.Tensor,
                 test_labels: torch.Tensor, epochs: int = 100, lr: float = 0.1, batch_size: int = 512,
                 weight_decay: float = 0.0, seed: int = 0,
                 progress: Callable[[int], None] | None = None) -> LinearProbeResult:
    """Logistic-regression probe on frozen features (no augmentation).

    Features are standardised with the training set's mean and std (a BN without affine, as the
    linear evaluations of Chen & He 2021 and Wang et al. 2021 place before the classifier), then a
    linear layer is trained with SGD (momentum 0.9, cosine lr) and cross-entropy.
    """
    gen = torch.Generator().manual_seed(seed)
    mean, std = train_feats.mean(0), train_feats.std(0) + 1e-6
    xtr, xte = (train_feats - mean) / std, (test_feats - mean) / std
    num_classes = int(max(train_labels.max(), test_labels.max())) + 1
    clf = nn.Linear(xtr.shape[1], num_classes)
    opt = torch.optim.SGD(clf.parameters(), lr=lr, momentum=0.9, weight_decay=weight_decay)
    steps_per_epoch = math.ceil(len(xtr) / batch_size)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, epochs * steps_per_epoch)
    for epoch in range(epochs):
        perm = torch.randperm(len(xtr), generator=gen)
        for start in range(0, len(xtr), batch_size):
            idx = perm[start:start + batch_size]
            loss = F.cross_entropy(clf(xtr[idx]), train_labels[idx])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
        if progress is not None:
            progress(epoch)
    with torch.no_grad():
        top1 = (clf(xte).argmax(1) == test_labels).float().mean().item()
        train_top1 = (clf(xtr).argmax(1) == train_labels).float().mean().item()
    return LinearProbeResult(top1=top1, train_top1=train_top1, epochs=epochs)
