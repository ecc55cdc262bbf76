"""The coarse scans behind the Wen & Li regime study's layout (README, "The regime study").

Three scans of the toy model around the primary setting, each one batched grid
(``stopgrad.theory.wen_li_grid``: trained identity head and fixed head from the same start),
10 seeds, printed as one line per setting and reading:

    .venv/bin/python benchmarks/wen_li_coarse.py e1   # ratio x noise x lr_head/lr (0.1, 1), 5,000 steps
    .venv/bin/python benchmarks/wen_li_coarse.py e2   # ratio x noise x lr_head/lr (1..30) x init_std, 12,000 steps
    .venv/bin/python benchmarks/wen_li_coarse.py e3   # lr 0.05 / 0.1 x ratio x noise x lr_head/lr (10, 30), 8,000 steps

Each took 4-13 minutes on one thread of this machine with other jobs beside it.
"""

from __future__ import annotations

import argparse
import itertools
import time

import torch

from stopgrad.reproduce.wen_li import PRIMARY, outcome
from stopgrad.theory.wen_li_grid import simulate_grid

SCANS = {
    "e1": (5000, [dict(alpha2=3.0 / r, noise=n, lr_head=PRIMARY.lr * h)
                  for r, n, h in itertools.product([1.25, 1.5, 2, 3, 5], [0.25, 0.5, 1, 2], [0.1, 1.0])]),
    "e2": (12000, [dict(alpha2=3.0 / r, noise=n, lr_head=PRIMARY.lr * h, init_std=i)
                   for r, n, h, i in itertools.product([2, 3], [1, 2], [1, 3, 10, 30], [0.3, 1.0])]),
    "e3": (8000, [dict(lr=lr, alpha2=3.0 / r, noise=n, lr_head=lr * h)
                  for lr, r, n, h in itertools.product([0.05, 0.1], [1.5, 2, 3], [1, 2], [10, 30])]),
}


def frac(xs: list[bool]) -> float:
    return sum(map(bool, xs)) / len(xs)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("scan", choices=sorted(SCANS))
    ap.add_argument("--seeds", type=int, default=10)
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    steps, changes = SCANS[args.scan]
    cfgs = [PRIMARY.with_(alpha1=3.0, steps=steps, log_every=50, **c) for c in changes]
    t0 = time.time()
    gt = simulate_grid(cfgs, args.seeds)
    print(f"{args.scan}: {len(cfgs)} settings x {args.seeds} seeds x 2 heads, {steps} steps in {time.time() - t0:.0f} s")
    for cut in sorted({steps // 2, steps}):
        g2 = gt.until(cut)
        print(f"--- read at step {cut}")
        for g, c in enumerate(cfgs):
            tr, fx = outcome(g2.trajectory(g, 0)), outcome(g2.trajectory(g, 1))
            print(f"ratio {c.alpha1 / c.alpha2:g}  noise {c.noise:g}  lr {c.lr:g}  lr_head/lr {c.lr_head / c.lr:g}  "
                  f"init {c.init_std:g} | trained: one per feature {frac(tr.one_each):.1f}, all on v1 "
                  f"{frac(tr.all_v1):.1f}, rise-fall {frac(tr.rise_fall):.1f} | fixed: one per feature "
                  f"{frac(fx.one_each):.1f}, all on v1 {frac(fx.all_v1):.1f}")


if __name__ == "__main__":
    main()
