"""Throughput of stopgrad.augment: images/s for two views of a batch, batched vs. a per-image loop.

Prints one row per preset: median images/s (wall clock, and per CPU-second of all threads) over
several repetitions for producing both views of a batch in one batched call, and (unless
``--no-naive``) the same work as a Python loop with one call per image (the shape of a per-image
torchvision pipeline in a DataLoader), with the speedup as a ratio measured in this run.

The per-image loop runs the same batched code at B=1, so the ratio measures batching, not a
different implementation (torchvision is not usable in this environment).

Usage:
    python benchmarks/bench_augment.py                      # CPU, 2 threads
    python benchmarks/bench_augment.py --device cuda --threads 8
    python benchmarks/bench_augment.py --json out/bench_augment.json
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from collections.abc import Callable
from pathlib import Path

import torch

from stopgrad.augment import build_views

# preset -> input (C, H, W)
CASES: dict[str, tuple[int, int, int]] = {
    "28-gray": (1, 28, 28),
    "32": (3, 32, 32),
    "96": (3, 96, 96),
}


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _median_seconds(
    fn: Callable[[], object], device: torch.device, reps: int, warmup: int = 1
) -> tuple[float, float]:
    """Median wall-clock and median process CPU seconds per call.

    CPU time (all threads) is the steadier number on a shared machine: it barely moves when other
    jobs steal cores, while wall time does.
    """
    for _ in range(warmup):
        fn()
    _sync(device)
    wall, cpu = [], []
    for _ in range(reps):
        start, start_cpu = time.perf_counter(), time.process_time()
        fn()
        _sync(device)
        wall.append(time.perf_counter() - start)
        cpu.append(time.process_time() - start_cpu)
    return statistics.median(wall), statistics.median(cpu)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="cpu", help="torch device, e.g. cpu or cuda")
    parser.add_argument("--batch", type=int, default=256)
    parser.add_argument("--views", type=int, default=2)
    parser.add_argument("--reps", type=int, default=7, help="timed repetitions (median reported)")
    parser.add_argument("--threads", type=int, default=2, help="torch.set_num_threads")
    parser.add_argument("--presets", nargs="+", default=list(CASES), choices=list(CASES))
    parser.add_argument("--no-naive", dest="naive", action="store_false", help="skip the per-image loop")
    parser.add_argument("--naive-reps", type=int, default=3)
    parser.add_argument("--json", type=Path, default=None, help="also write the results here")
    args = parser.parse_args()

    torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    print(f"device={device} threads={torch.get_num_threads()} batch={args.batch} views={args.views} "
          f"reps={args.reps} torch={torch.__version__}")
    print(f"{'preset':<9} {'input':<10} {'batched img/s':>14} {'img/CPU-s':>10} {'loop img/s':>11} {'speedup':>8}")

    results = []
    for preset in args.presets:
        c, h, w = CASES[preset]
        views = build_views(preset, n_views=args.views)
        images = torch.randint(0, 256, (args.batch, c, h, w), dtype=torch.uint8, device=device)
        gen = torch.Generator(device=device).manual_seed(0)

        batched_s, batched_cpu = _median_seconds(lambda: views(images, gen), device, args.reps)
        row = {"preset": preset, "input": [c, h, w], "batch": args.batch, "views": args.views,
               "batched_images_per_s": args.batch / batched_s,
               "batched_images_per_cpu_s": args.batch / batched_cpu}
        line = f"{preset:<9} {f'{c}x{h}x{w}':<10} {args.batch / batched_s:>14,.0f} {args.batch / batched_cpu:>10,.0f}"
        if args.naive:
            def loop() -> None:
                for i in range(args.batch):
                    views(images[i : i + 1], gen)

            loop_s, _ = _median_seconds(loop, device, args.naive_reps)
            row["loop_images_per_s"] = args.batch / loop_s
            row["speedup"] = loop_s / batched_s
            line += f" {args.batch / loop_s:>11,.0f} {loop_s / batched_s:>7.1f}x"
        print(line, flush=True)
        results.append(row)

    if args.json is not None:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps({"device": str(device), "threads": args.threads, "results": results}, indent=2))


if __name__ == "__main__":
    main()
