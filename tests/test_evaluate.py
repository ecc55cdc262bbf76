"""kNN and the linear probe against brute-force and known-answer cases."""

import numpy as np
import torch

from stopgrad.evaluate import knn_accuracy, knn_predict, linear_probe


def test_knn_matches_bruteforce_oracle():
    g = torch.Generator().manual_seed(0)
    train, test = torch.randn(300, 16, generator=g), torch.randn(50, 16, generator=g)
    labels = torch.randint(0, 4, (300,), generator=g)
    scores = knn_predict(train, labels, test, 4, k=20, temperature=0.1, chunk=7)
    tr = train.numpy() / np.linalg.norm(train.numpy(), axis=1, keepdims=True)
    te = test.numpy() / np.linalg.norm(test.numpy(), axis=1, keepdims=True)
    for i in range(50):
        sim = tr @ te[i]
        top = np.argsort(-sim)[:20]
        expected = np.zeros(4)
        for j in top:
            expected[labels[j]] += np.exp(sim[j] / 0.1)
        assert np.allclose(scores[i].numpy(), expected, rtol=1e-4)


def test_knn_separable_clusters_and_chance():
    g = torch.Generator().manual_seed(1)
    centers = torch.randn(5, 32, generator=g) * 5
    y_tr, y_te = torch.arange(500) % 5, torch.arange(200) % 5
    x_tr = centers[y_tr] + torch.randn(500, 32, generator=g) * 0.1
    x_te = centers[y_te] + torch.randn(200, 32, generator=g) * 0.1
    assert knn_accuracy(x_tr, y_tr, x_te, y_te, k=20) == 1.0
    # collapsed features (all equal): prediction is a single class → chance accuracy
    acc = knn_accuracy(torch.ones(500, 32), y_tr, torch.ones(200, 32), y_te, k=20)
    assert abs(acc - 0.2) < 1e-6


def test_linear_probe_learns_linear_labels_and_fails_on_noise():
    g = torch.Generator().manual_seed(2)
    x = torch.randn(2000, 20, generator=g)
    w = torch.randn(20, 3, generator=g)
    y = (x @ w).argmax(1)
    res = linear_probe(x[:1500], y[:1500], x[1500:], y[1500:], epochs=30, lr=0.1)
    assert res.top1 > 0.9
    y_rand = torch.randint(0, 3, (2000,), generator=g)
    res = linear_probe(x[:1500], y_rand[:1500], x[1500:], y_rand[1500:], epochs=30, lr=0.1)
    assert res.top1 < 0.45
