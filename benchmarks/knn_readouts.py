"""How much the kNN's reading of the features weighs: the same frozen backbone, five readouts.

The project's kNN (k and T from the run's ``eval`` config: 200 and 0.1) takes the backbone's
output as it is and compares cosines. A ConvNet's output comes after a ReLU, so every feature is
non-negative and all of them share a large mean direction (the backbone's own centre vector, in the
sense of Jha et al. 2024, Sec. 3). This script reads one trained run's features of its labelled
training split (the bank) and of its evaluation split (the held-out images of a run trained with
``data.holdout``, else the test set), and scores the kNN of:

- ``standard``: the features as the project's kNN reads them (must equal ``stopgrad eval knn``);
- ``centred``: minus the bank's mean feature, then cosine;
- ``standardised``: minus the bank's mean, over the bank's per-dimension std (as the linear probe
  reads them), then cosine;
- ``pre-relu`` (ConvNet only): the last block's BN output, before its ReLU, pooled to the same grid;
- ``with-block3`` (ConvNet only): the output concatenated with block 3's pooled map.

It changes no protocol: every table in the README keeps the standard readout. Example:

    .venv/bin/python benchmarks/knn_readouts.py runs/fmnist-budget/views-24-solarize/seed* --threads 1
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import torch
from torch import nn

from stopgrad.backbones import ConvNet
from stopgrad.evaluate import knn_accuracy
from stopgrad.run_evaluation import labelled_train
from stopgrad.train import load_run

READOUTS = ("standard", "centred", "standardised", "pre-relu", "with-block3")


def _convnet_taps(backbone: nn.Module, taps: dict[str, torch.Tensor]) -> bool:
    """Hooks that keep the last BN's output (cloned: the ReLU after it runs in place) and block 3's
    pooled map; False when the backbone is not a ConvNet."""
    if not isinstance(backbone, ConvNet):
        return False
    layers = list(backbone.features)
    last_bn = [m for m in layers[-3].modules() if isinstance(m, nn.BatchNorm2d)][-1]
    grid = layers[-2].output_size  # the GridPool's side
    last_bn.register_forward_hook(
        lambda m, i, o: taps.__setitem__("pre-relu", nn.functional.adaptive_avg_pool2d(o.clone(), grid).flatten(1)))
    layers[-4].register_forward_hook(
        lambda m, i, o: taps.__setitem__("block3", nn.functional.adaptive_avg_pool2d(o, grid).flatten(1)))
    return True


@torch.no_grad()
def readout_features(run, images: torch.Tensor, batch: int = 1000) -> dict[str, torch.Tensor]:
    """``{"out": backbone output, "pre-relu": ..., "block3": ...}`` of ``images`` (fp32, eval mode)."""
    backbone = run.method.backbone.eval()
    taps: dict[str, torch.Tensor] = {}
    convnet = _convnet_taps(backbone, taps)
    parts: dict[str, list[torch.Tensor]] = {"out": [], "pre-relu": [], "block3": []}
    for start in range(0, len(images), batch):
        x = run.views.eval_transform(images[start:start + batch].to(run.device))
        parts["out"].append(backbone(x).float().cpu())
        if convnet:
            parts["pre-relu"].append(taps["pre-relu"].float().cpu())
            parts["block3"].append(taps["block3"].float().cpu())
    return {k: torch.cat(v) for k, v in parts.items() if v}


def readout_accuracies(run) -> dict[str, float]:
    """kNN top-1 of every readout of :data:`READOUTS` that this backbone has."""
    assert run.test_set is not None, "the run's dataset has no labelled evaluation split"
    images, bank_labels = labelled_train(run)
    bank, queries = readout_features(run, images), readout_features(run, run.test_set.images)
    k, t = run.cfg.eval.knn_k, run.cfg.eval.knn_t

    def knn(a: torch.Tensor, b: torch.Tensor) -> float:
        return knn_accuracy(a, bank_labels, b, run.test_set.labels, k=k, temperature=t)

    mean, std = bank["out"].mean(0), bank["out"].std(0) + 1e-6
    acc = {"standard": knn(bank["out"], queries["out"]),
           "centred": knn(bank["out"] - mean, queries["out"] - mean),
           "standardised": knn((bank["out"] - mean) / std, (queries["out"] - mean) / std)}
    if "pre-relu" in bank:
        acc["pre-relu"] = knn(bank["pre-relu"], queries["pre-relu"])
        acc["with-block3"] = knn(torch.cat([bank["out"], bank["block3"]], 1),
                                 torch.cat([queries["out"], queries["block3"]], 1))
    return acc


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("runs", nargs="+", type=Path, help="finished run folders")
    p.add_argument("--threads", type=int, default=0, help="intra-op threads (0: torch's default)")
    p.add_argument("--out", type=Path, help="JSON file for the accuracies (default: print only)")
    args = p.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    results = {}
    for run_dir in args.runs:
        acc = readout_accuracies(load_run(run_dir))
        results[str(run_dir)] = acc
        print(f"{run_dir}: " + "  ".join(f"{name} {value:.4f}" for name, value in acc.items()), flush=True)
    if len(results) > 1:
        names = [n for n in READOUTS if all(n in r for r in results.values())]
        base = [r["standard"] for r in results.values()]
        for n in names:
            gains = [r[n] - b for r, b in zip(results.values(), base)]
            print(f"mean {n:<13} {sum(r[n] for r in results.values()) / len(results):.4f} "
                  f"(gain over standard {sum(gains) / len(gains):+.4f})")
    if args.out:
        args.out.write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
