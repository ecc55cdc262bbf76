"""Which one bounds training: making the views, or the training step?

Times, for one preset, (a) producing the views of a batch and (b) a whole training step (views,
forward, backward, optimizer, EMA, hooks) on resident data, and prints images/s for both and the
share of the step spent on views. Example:

    .venv/bin/python benchmarks/bench_step.py fashion-mnist/simsiam --threads 1
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time

import torch

from stopgrad.config import resolve
from stopgrad.train import setup, train_step


def median_time(fn, reps: int) -> float:
    times = []
    for _ in range(reps):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("preset", nargs="?", default="fashion-mnist/simsiam")
    p.add_argument("overrides", nargs="*")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--reps", type=int, default=10)
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    with tempfile.TemporaryDirectory() as tmp:
        run = setup(resolve(args.preset, [*args.overrides, f"train.out_dir={tmp}", "train.progress=false",
                                          "train.diag_every=0"]))
        batch = run.train_set.images[: run.cfg.data.batch_size].to(run.device)
        labels = run.train_set.labels[: run.cfg.data.batch_size].to(run.device) if run.method.uses_labels else None
        gen = torch.Generator(device=run.device).manual_seed(0)

        def one_step(i: int) -> None:
            train_step(run, i, batch, labels) if labels is not None else train_step(run, i, batch)

        for i in range(3):  # warm-up
            run.views(batch, generator=gen)
            one_step(i)
        t_views = median_time(lambda: run.views(batch, generator=gen), args.reps)
        step = iter(range(3, 10_000))
        t_step = median_time(lambda: one_step(next(step)), args.reps)
    b = len(batch)
    print(f"{args.preset} ({run.cfg.model.backbone}, batch {b}, {args.threads} thread(s), {run.precision})")
    print(f"  views only : {t_views * 1e3:8.1f} ms  {b / t_views:9.0f} images/s")
    print(f"  train step : {t_step * 1e3:8.1f} ms  {b / t_step:9.0f} images/s")
    print(f"  views are {100 * t_views / t_step:.1f}% of the step: "
          f"{'the views' if t_views > 0.5 * t_step else 'the model step'} bound training")


if __name__ == "__main__":
    main()
