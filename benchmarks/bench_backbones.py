"""Training-step throughput of the backbones on Fashion-MNIST-sized input, on this CPU.

One step = forward of a ``(B, 1, 28, 28)`` batch, a dummy loss on the pooled features, backward and
an SGD step. Each backbone is timed in fp32 and under bf16 autocast, with contiguous and
channels_last tensors, round-robin, and the fastest step of each counts. The ``ep/20min`` column converts images/s into Fashion-MNIST epochs of a
two-view method (120k image passes per epoch) in 20 minutes.

Usage:
    python benchmarks/bench_backbones.py [--threads 2] [--batch 256] [--budget 4] [--out results.json]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import time
from typing import Callable

import torch

from stopgrad.backbones import build_backbone

# (label, name, kwargs for build_backbone)
CONFIGS: list[tuple[str, str, dict]] = [
    ("convnet w1", "convnet", {"width": 1.0}),
    ("convnet w2", "convnet", {"width": 2.0}),
    ("resnet9 w0.5", "resnet9", {"width": 0.5}),
    ("resnet9 w1", "resnet9", {"width": 1.0}),
    ("resnet18 small w1", "resnet18", {"stem": "small"}),
    ("resnet18 cifar w0.5", "resnet18", {"width": 0.5}),
    ("resnet18 cifar w1", "resnet18", {"width": 1.0}),
]
VARIANTS = [("fp32", False), ("fp32", True), ("bf16", False), ("bf16", True)]  # (precision, channels_last)


def make_step(name: str, kwargs: dict, precision: str, channels_last: bool, batch: int) -> Callable[[], None]:
    """A closure running one SGD training step of a fresh backbone on a fixed random batch."""
    torch.manual_seed(0)
    net, _ = build_backbone(name, in_channels=1, **kwargs)
    fmt = torch.channels_last if channels_last else torch.contiguous_format
    net = net.to(memory_format=fmt).train()
    opt = torch.optim.SGD(net.parameters(), lr=0.01, momentum=0.9)
    x = torch.randn(batch, 1, 28, 28).to(memory_format=fmt)
    amp = torch.autocast("cpu", dtype=torch.bfloat16) if precision == "bf16" else contextlib.nullcontext()

    def step() -> None:
        with amp:
            feats = net(x)  # (B, F)
        loss = feats.float().square().mean()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    return step


def best_step_times(steps: list[Callable[[], None]], budget_s: float, min_rounds: int = 3) -> list[float]:
    """Fastest wall time of one step for each closure, timed round-robin after one warm-up step each.

    Interleaving and taking the minimum keep the comparison fair on a shared machine whose load
    changes during the run (the minimum is the least-disturbed step).
    """
    for step in steps:
        step()  # warm-up: allocator, oneDNN primitive creation
    best = [float("inf")] * len(steps)
    rounds, start = 0, time.perf_counter()
    while rounds < min_rounds or time.perf_counter() - start < budget_s:
        for i, step in enumerate(steps):
            t0 = time.perf_counter()
            step()
            best[i] = min(best[i], time.perf_counter() - t0)
        rounds += 1
    return best


def cpu_pressure() -> str:
    """Linux PSI: share of the last 60 s some runnable task waited for a CPU (others' load), or ``n/a``."""
    try:
        with open("/proc/pressure/cpu") as f:
            return f.readline().split()[2].split("=")[1] + "%"
    except (OSError, IndexError):
        return "n/a"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--batch", type=int, default=256)
    parser.add_argument("--budget", type=float, default=4.0, help="seconds of timed rounds per backbone (at least 3 rounds)")
    parser.add_argument("--out", default=None, help="also write the results as JSON here")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    header = ["backbone", "params"] + [f"{p}{' CL' if cl else ''}" for p, cl in VARIANTS] + ["best", "ep/20min"]
    print(f"torch {torch.__version__}, {args.threads} threads, batch {args.batch} x 1x28x28, images/s of the "
          f"fastest training step (CL = channels_last)")
    print(" | ".join(f"{h:>19}" if i == 0 else f"{h:>9}" for i, h in enumerate(header)))
    results = []
    pressure_before = cpu_pressure()
    for label, name, kwargs in CONFIGS:
        params = sum(p.numel() for p in build_backbone(name, in_channels=1, **kwargs)[0].parameters())
        steps = [make_step(name, kwargs, p, cl, args.batch) for p, cl in VARIANTS]
        times = best_step_times(steps, args.budget)
        row = {f"{p}{'_cl' if cl else ''}": args.batch / t for (p, cl), t in zip(VARIANTS, times)}
        best_key = max(row, key=row.get)
        epochs = row[best_key] * 20 * 60 / 120_000  # two views of 60k images per epoch
        cells = [f"{label:>19}", f"{params / 1e6:>8.2f}M"] + [f"{v:>9.0f}" for v in row.values()]
        print(" | ".join(cells + [f"{best_key:>9}", f"{epochs:>9.1f}"]), flush=True)
        results.append({"backbone": label, "params": params, "images_per_s": row, "best": best_key,
                        "epochs_in_20min_two_views": epochs})
    print(f"CPU pressure (PSI some avg60) before: {pressure_before}, after: {cpu_pressure()}; "
          f"high values mean other processes competed for the cores and the numbers are low")
    if args.out:
        with open(args.out, "w") as f:
            json.dump({"threads": args.threads, "batch": args.batch, "torch": torch.__version__,
                       "results": results}, f, indent=2)


if __name__ == "__main__":
    main()
