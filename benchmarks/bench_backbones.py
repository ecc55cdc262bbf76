"""Training-step throughput of the backbones on Fashion-MNIST-sized input, on this CPU.

One step = forward of a ``(B, 1, 28, 28)`` batch, a dummy loss on the pooled features, backward and
an SGD step. Each backbone is timed in fp32 and under bf16 autocast, with contiguous and
channels_last tensors, round-robin after one warm-up step each; the fastest step of each counts
(the least disturbed one on a shared machine). Cells are images/s; ``ep/20min`` converts the best
into Fashion-MNIST epochs of a two-view method (120k image passes per epoch) in 20 minutes.

Every backbone is timed with each ``--threads`` value (default 1 and 2): on a 2-core machine shared
with other jobs, two intra-op threads can be several times *slower* than one, because every
parallel region waits for a thread whose core is busy elsewhere.

``OMP_WAIT_POLICY`` defaults to ``PASSIVE`` here: with libgomp's default spin-waiting, 2-thread steps
of the small ConvNet ran 6x slower than with passive waiting while another job held a core. Set
``OMP_WAIT_POLICY=ACTIVE`` to measure the default behaviour.

Usage:
    python benchmarks/bench_backbones.py [--threads 1 2] [--batch 256] [--budget 2] [--only LABEL ...]
                                         [--out results.json]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import time
from typing import Callable

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # read once, when torch loads libgomp

import torch  # noqa: E402

from stopgrad.backbones import build_backbone  # noqa: E402

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
KEYS = [f"{p}{'_cl' if cl else ''}" for p, cl in VARIANTS]


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


def best_step_times(steps: list[Callable[[], None]], budget_s: float, min_rounds: int = 1) -> list[float]:
    """Fastest wall time of one step per closure, timed round-robin after one warm-up step each.

    Interleaving and taking the minimum keep the comparison fair on a shared machine whose load
    changes during the run.
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
    """Linux PSI: share of the last 60 s in which some runnable task waited for a CPU, or ``n/a``."""
    try:
        with open("/proc/pressure/cpu") as f:
            return f.readline().split()[2].split("=")[1] + "%"
    except (OSError, IndexError):
        return "n/a"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--batch", type=int, default=256)
    parser.add_argument("--budget", type=float, default=2.0,
                        help="seconds of timed rounds per backbone and thread count (at least 1 round)")
    parser.add_argument("--only", nargs="+", default=None, metavar="LABEL",
                        help="time only the backbones whose label contains one of these, e.g. 'resnet18 cifar'")
    parser.add_argument("--out", default=None, help="also write the results as JSON here")
    args = parser.parse_args()

    print(f"torch {torch.__version__}, OMP_WAIT_POLICY={os.environ['OMP_WAIT_POLICY']}, batch {args.batch} x "
          f"1x28x28; images/s of the fastest training step; CL = channels_last; ep/20min = Fashion-MNIST "
          f"epochs of a two-view method in 20 min at the best rate")
    header = ["backbone", "thr", "params"] + [k.replace("_cl", " CL") for k in KEYS] + ["best", "ep/20min"]
    widths = [19, 3, 7] + [7] * len(KEYS) + [7, 8]
    print(" | ".join(f"{h:>{w}}" for h, w in zip(header, widths)))
    results = []
    pressure_before = cpu_pressure()
    configs = [c for c in CONFIGS if args.only is None or any(o in c[0] for o in args.only)]
    if not configs:
        raise SystemExit(f"--only {args.only}: no backbone label matches; labels: {[c[0] for c in CONFIGS]}")
    for label, name, kwargs in configs:
        params = sum(p.numel() for p in build_backbone(name, in_channels=1, **kwargs)[0].parameters())
        for threads in args.threads:
            torch.set_num_threads(threads)
            steps = [make_step(name, kwargs, p, cl, args.batch) for p, cl in VARIANTS]
            rate = {k: args.batch / t for k, t in zip(KEYS, best_step_times(steps, args.budget))}
            best = max(rate, key=rate.get)
            epochs = rate[best] * 20 * 60 / 120_000  # two views of 60k images per epoch
            cells = [label, str(threads), f"{params / 1e6:.2f}M"] + [f"{rate[k]:.0f}" for k in KEYS]
            cells += [best, f"{epochs:.1f}"]
            print(" | ".join(f"{c:>{w}}" for c, w in zip(cells, widths)), flush=True)
            results.append({"backbone": label, "threads": threads, "params": params, "images_per_s": rate,
                            "best": best, "epochs_in_20min": epochs})
    print(f"CPU pressure (PSI some avg60) before: {pressure_before}, after: {cpu_pressure()}; "
          f"high values mean other jobs competed for the cores")
    if args.out:
        with open(args.out, "w") as f:
            json.dump({"batch": args.batch, "torch": torch.__version__,
                       "omp_wait_policy": os.environ["OMP_WAIT_POLICY"], "results": results}, f, indent=2)


if __name__ == "__main__":
    main()
