"""How much the kNN's reading of the features weighs: the same frozen backbone, five readouts.

The project's kNN (k and T from the run's ``eval`` config: 200 and 0.1) takes the backbone's
output as it is and compares cosines. A ConvNet's output comes after a ReLU, so every feature is
non-negative and all of them share a large mean direction (the backbone's own centre vector, in the
sense of Jha et al. 2024, Sec. 3). This script reads one trained run's features of its labelled
training split (the bank) and of its evaluation split (the held-out images of a run trained with
``data.holdout``, else the test set), and scores the kNN of:

- ``standard``: the features as the project's kNN reads them (the same features and formula as
  ``stopgrad eval knn``, so the same number);
- ``centred``: minus the bank's mean feature, then cosine;
- ``standardised``: minus the bank's mean, over the bank's per-dimension std (as the linear probe
  reads them), then cosine;
- ``pre-relu`` (ConvNet only): the last block's BN output, before its ReLU, pooled to the same grid;
- ``with-block3`` (ConvNet only): the output concatenated with block 3's pooled map.

It changes no protocol: every table in the README keeps the standard readout. Example:

    .venv/bin/python benchmarks/knn_readouts.py runs/fmnist-budget/views-24-solarize/seed* --threads 1
    .venv/bin/python benchmarks/knn_readouts.py runs/final-neck/simsiam-neck-20min-seed0 --random-init
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import torch
from torch import nn

from stopgrad.backbones import ConvNet
from stopgrad.errors import StopgradError, describe
from stopgrad.evaluate import knn_accuracy
from stopgrad.probe import standardise
from stopgrad.rundir import read_summary, require_run_dir
from stopgrad.run_evaluation import features, labelled_train
from stopgrad.train import load_run

READOUTS = ("standard", "centred", "standardised", "pre-relu", "with-block3")


def _convnet_taps(backbone: nn.Module, taps: dict[str, list[torch.Tensor]]) -> list:
    """Hooks that append, batch by batch, the last BN's output pooled to the output grid (taken before
    the in-place ReLU after it) and block 3's map pooled to that grid; their handles (none when the
    backbone is not a ConvNet)."""
    if not isinstance(backbone, ConvNet):
        return []
    layers = list(backbone.features)
    grid = layers[-2].output_size  # the GridPool's side
    last_bn = [m for m in layers[-3].modules() if isinstance(m, nn.BatchNorm2d)][-1]

    def keep(name: str):
        return lambda m, i, o: taps[name].append(nn.functional.adaptive_avg_pool2d(o, grid).flatten(1).float().cpu())

    return [last_bn.register_forward_hook(keep("pre-relu")), layers[-4].register_forward_hook(keep("block3"))]


def readout_features(run, images: torch.Tensor) -> dict[str, torch.Tensor]:
    """``{"out": the backbone features of the project's kNN, "pre-relu": ..., "block3": ...}`` of
    ``images``. ``out`` comes from :func:`stopgrad.run_evaluation.features` (the run's precision,
    memory format and batch size), and the taps ride along on the same forward passes."""
    taps: dict[str, list[torch.Tensor]] = {"pre-relu": [], "block3": []}
    handles = _convnet_taps(run.method.backbone, taps)
    try:
        out = {"out": features(run, images)}
    finally:
        for h in handles:
            h.remove()
    return {**out, **{k: torch.cat(v) for k, v in taps.items() if v}}


def normalised(bank: torch.Tensor, queries: torch.Tensor, how: str) -> tuple[torch.Tensor, torch.Tensor]:
    """Bank and queries ``as-is``, ``centred`` (minus the bank's mean) or ``standardised`` (then over
    the bank's per-dimension std: the probe's :func:`stopgrad.probe.standardise`): the queries never
    lend their own statistics."""
    if how == "as-is":
        return bank, queries
    if how == "centred":
        mean = bank.mean(0)
        return bank - mean, queries - mean
    if how == "standardised":
        bank, queries = standardise(bank, queries)
        return bank, queries
    raise ValueError(f"how={how!r}: expected 'as-is', 'centred' or 'standardised'")


def readout_accuracies(run) -> dict[str, float]:
    """kNN top-1 of every readout of :data:`READOUTS` that this backbone has."""
    if run.test_set is None:
        raise StopgradError(f"{run.run_dir}: {run.cfg.data.dataset} has no labelled evaluation split here")
    images, bank_labels = labelled_train(run)
    bank, queries = readout_features(run, images), readout_features(run, run.test_set.images)
    k, t = run.cfg.eval.knn_k, run.cfg.eval.knn_t

    def knn(a: torch.Tensor, b: torch.Tensor) -> float:
        return knn_accuracy(a, bank_labels, b, run.test_set.labels, k=k, temperature=t)

    acc = {name: knn(*normalised(bank["out"], queries["out"], how))
           for name, how in (("standard", "as-is"), ("centred", "centred"), ("standardised", "standardised"))}
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
    p.add_argument("--random-init", action="store_true",
                   help="read each run's backbone as initialised from its seed, not trained: the random-network "
                        "baseline under every readout (a feature_bn backbone's running statistics are then 0 and 1, "
                        "so its standard readout is the plain random network's, and its standardised one the fair "
                        "baseline for it)")
    args = p.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    results = {}
    for run_dir in args.runs:
        try:
            if "knn_top1" not in read_summary(require_run_dir(run_dir)):
                raise StopgradError(f"{run_dir}: not a finished run (its summary.json has no final kNN); "
                                    f"finish it with `stopgrad resume {run_dir}` first")
            acc = readout_accuracies(load_run(run_dir, random_init=args.random_init))
        except (StopgradError, OSError, ValueError) as e:
            raise SystemExit(f"knn_readouts: error: {describe(e)}") from None
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
