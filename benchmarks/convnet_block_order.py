"""The ConvNet's block order, timed both ways in one process: conv-BN-pool-ReLU (the model's, since
2026-12-07) against conv-BN-ReLU-pool (before). The two compute the same values and gradients
(``tests/test_backbones.py``), so only the time can differ. For each preset it builds the run once,
then re-arranges the same modules (weights, BN statistics and optimizer state untouched) between
interleaved rounds of whole ``train_step`` calls on resident data, and prints images/s of each order.

    .venv/bin/python benchmarks/convnet_block_order.py fashion-mnist/simsiam fashion-mnist/byol --threads 2
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time

import torch
from torch import nn

from stopgrad.backbones import ConvNet
from stopgrad.config import resolve
from stopgrad.errors import ConfigError, StopgradError
from stopgrad.train import setup, train_step


def arrange(net: ConvNet, order: str) -> None:
    """Put ``net``'s first three blocks in ``order`` (``"pool-relu"`` or ``"relu-pool"``), same modules."""
    f = list(net.features)
    for i in (0, 2, 4):
        conv, bn = f[i][0], f[i][1]
        if order == "relu-pool":
            f[i], f[i + 1] = nn.Sequential(conv, bn, nn.ReLU(inplace=True)), nn.MaxPool2d(2)
        else:
            f[i], f[i + 1] = nn.Sequential(conv, bn), nn.Sequential(nn.MaxPool2d(2), nn.ReLU(inplace=True))
    net.features = nn.Sequential(*f)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("presets", nargs="*", default=["fashion-mnist/simsiam"])
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--rounds", type=int, default=6)
    p.add_argument("--steps", type=int, default=4, help="train steps per round")
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    for preset in args.presets:
        with tempfile.TemporaryDirectory() as tmp:
            try:
                run = setup(resolve(preset, [f"train.out_dir={tmp}", "train.progress=false", "train.diag_every=0"]))
            except ConfigError as e:
                raise SystemExit(f"convnet_block_order: {str(e).split(' (known:')[0]}; name a fashion-mnist/ preset")
            except StopgradError as e:  # e.g. a dataset that is not on this machine
                raise SystemExit(f"convnet_block_order: {preset}: {e}")
            nets = [m for m in run.method.modules() if isinstance(m, ConvNet)]  # with BYOL's target
            if not nets or any(m.features[1][0].__class__ is not nn.MaxPool2d for m in nets):
                raise SystemExit(f"{preset}: not a ConvNet preset with the default block order")
            batch = run.train_set.images[: run.cfg.data.batch_size].to(run.device)
            step = iter(range(1_000_000))

            def timed(order: str) -> float:
                for m in nets:
                    arrange(m, order)
                t0 = time.perf_counter()
                for _ in range(args.steps):
                    train_step(run, next(step), batch)
                return (time.perf_counter() - t0) / args.steps

            times: dict[str, list[float]] = {"relu-pool": [], "pool-relu": []}
            for order in times:  # warm-up
                timed(order)
            for r in range(args.rounds):
                for order in (("relu-pool", "pool-relu") if r % 2 == 0 else ("pool-relu", "relu-pool")):
                    times[order].append(timed(order))
        b = len(batch)
        med = {k: statistics.median(v) for k, v in times.items()}
        print(f"{preset} ({args.threads} threads, {run.precision}): relu-pool {b / med['relu-pool']:.0f} images/s, "
              f"pool-relu {b / med['pool-relu']:.0f} images/s, ratio {med['relu-pool'] / med['pool-relu']:.3f}; "
              f"rounds {[round(b / t) for t in times['relu-pool']]} / {[round(b / t) for t in times['pool-relu']]}",
              flush=True)


if __name__ == "__main__":
    main()
