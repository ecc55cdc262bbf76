"""Cost of one closed-form predictor update: DirectPred (``eigh``) vs DirectCopy (power iteration).

For each width ``d`` the script builds a correlation EMA from synthetic projector outputs with a
decaying spectrum, then times one predictor update of each form, i.e. computing ``W`` from ``F``
and writing it into the head (``ClosedFormPredictor.set_weight``):

- DirectPred: ``directpred_weight`` (one ``torch.linalg.eigh`` of the ``(d, d)`` float32 ``F``);
- DirectCopy: ``directcopy_weight(norm="spectral", power_iters=5)`` (5 matrix-vector products).

Both are measured in the same run, as medians, and reported with their ratio. To put them in
scale, one training step of ``fashion-mnist/directpred`` (ConvNet backbone, batch 256, small heads,
whose own predictor update is at ``d = 256``) is timed through ``stopgrad.train.setup`` +
``train_step``, and each update is given as a fraction of that step. The correlation-tracker
update (shared by both forms, ``O(B·d²)``) is shown separately.

Everything runs on one thread (``torch.set_num_threads(1)``) by default.

Usage:
    python benchmarks/bench_predictors.py
    python benchmarks/bench_predictors.py --dims 128 512 --threads 2 --json out/bench_predictors.json
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from collections.abc import Callable
from pathlib import Path

import torch

from stopgrad.predictors import ClosedFormPredictor, CorrelationTracker, directcopy_weight, directpred_weight


def median_ms(fn: Callable[[], object], reps: int, warmup: int = 1) -> float:
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(reps):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return 1e3 * statistics.median(times)


def synthetic_tracker(d: int, batch: int = 256, steps: int = 3, seed: int = 0) -> CorrelationTracker:
    """A correlation EMA (rho = 0.3) of outputs whose spectrum decays like 0.99^k."""
    g = torch.Generator().manual_seed(seed)
    q, _ = torch.linalg.qr(torch.randn(d, d, generator=g))
    scale = 0.99 ** torch.arange(d, dtype=torch.float32)
    tracker = CorrelationTracker(d, rho=0.3)
    for _ in range(steps):
        tracker.update([(torch.randn(batch, d, generator=g) * scale) @ q.T for _ in range(2)])
    return tracker


def train_step_ms(reps: int) -> tuple[float, int]:
    """Median time of one train step of fashion-mnist/directpred (ConvNet, batch 256)."""
    from stopgrad.config import resolve
    from stopgrad.train import setup, train_step

    cfg = resolve("fashion-mnist/directpred", [
        "model.backbone=convnet", "data.batch_size=256", "train.out_dir=/tmp/bench_runs",
        "train.num_threads=1", "train.progress=false", "train.steps=1000"])
    run = setup(cfg)
    run.method.train()
    images = run.train_set.images[:256]
    counter = iter(range(10_000))
    ms = median_ms(lambda: train_step(run, next(counter), images), reps, warmup=2)
    return ms, run.method.proj_dim


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dims", type=int, nargs="+", default=[128, 512, 2048])
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--step-reps", type=int, default=5)
    parser.add_argument("--json", type=Path, default=None, help="also write the rows as JSON")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    step_ms, step_d = train_step_ms(args.step_reps)
    torch.set_num_threads(args.threads)  # setup may have changed it
    rows = []
    for d in args.dims:
        reps = 30 if d <= 256 else 10 if d <= 1024 else 3
        tracker = synthetic_tracker(d)
        F = tracker.correlation()
        head = ClosedFormPredictor(d)
        z = [torch.randn(256, d), torch.randn(256, d)]
        dp = median_ms(lambda: head.set_weight(directpred_weight(F, 0.01)), reps)
        dc = median_ms(lambda: head.set_weight(directcopy_weight(F, 0.25, "spectral", 5)), reps)
        tr = median_ms(lambda: tracker.update(z), reps)
        rows.append({"d": d, "directpred_ms": dp, "directcopy_ms": dc, "ratio": dp / dc, "tracker_ms": tr,
                     "directpred_step_frac": dp / step_ms, "directcopy_step_frac": dc / step_ms})

    print(f"threads={args.threads}; one train step of fashion-mnist/directpred (convnet, batch 256, "
          f"its own predictor at d={step_d}): {step_ms:.1f} ms (median of {args.step_reps})")
    print(f"{'d':>6} {'DirectPred ms':>14} {'DirectCopy ms':>14} {'ratio DP/DC':>12} {'tracker ms':>11} "
          f"{'DP / step':>10} {'DC / step':>10}")
    for r in rows:
        print(f"{r['d']:>6} {r['directpred_ms']:>14.3f} {r['directcopy_ms']:>14.3f} {r['ratio']:>12.1f} "
              f"{r['tracker_ms']:>11.3f} {r['directpred_step_frac']:>10.2%} {r['directcopy_step_frac']:>10.2%}")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps({"threads": args.threads, "train_step_ms": step_ms,
                                         "train_step_pred_dim": step_d, "rows": rows}, indent=2))


if __name__ == "__main__":
    main()
