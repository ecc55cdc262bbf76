"""Worker of tests/test_ddp_equivalence.py: a few training steps of each named method, saved for comparison.

    python tests/ddp_worker.py OUT simsiam,byol,...                # one process, batch B
    torchrun --nproc_per_node=2 tests/ddp_worker.py OUT simsiam,...   # two processes, B/2 each

Each method's run is the test suite's tiny synthetic run in fp32 with the same seed; the worker
saves (on rank 0) the loss of every step (averaged over processes, as the loop logs it), the
gradients of the last step (after DDP's all-reduce), the collapse diagnostics of every step and the
parameters and buffers after the last step, to ``OUT/<method>-w<world size>.pt``.
"""

from __future__ import annotations

import sys
from pathlib import Path

import torch

from stopgrad import distributed as dist
from stopgrad.config import resolve
from stopgrad.train import batch_indices, epoch_permutation, setup, train_step

STEPS = 3
BASE = ["data.dataset=synthetic", "data.views=28-gray", "data.batch_size=16", "model.backbone=convnet",
        "model.width=0.25", "train.precision=fp32", "train.channels_last=false", "train.diag_every=1",
        "train.spectrum_every=0",
        "train.progress=false", "eval.knn_every=0", "train.num_threads=1", f"train.steps={STEPS}"]
EXTRA = {"dino": ["method.heads=small", "method.out_dim=64"], "swav": ["method.prototypes=20"]}


def run_method(name: str, out: Path) -> None:
    overrides = [*BASE, f"method.name={name}", f"train.out_dir={out / 'runs'}"]
    if name not in EXTRA and name != "supervised":
        overrides.append("method.heads=small")
    cfg = resolve(None, overrides + EXTRA.get(name, []))
    run = setup(cfg)
    run.method.train()
    perm = epoch_permutation(cfg.train.seed, 0, len(run.train_set))
    losses, diags = [], []
    for step in range(STEPS):
        idx = batch_indices(run, step, perm)
        batch = run.train_set.images[idx]
        labels = run.train_set.labels[idx] if run.method.uses_labels else None
        loss, _, out_ = train_step(run, step, batch, labels) if labels is not None else train_step(run, step, batch)
        losses.append(dist.all_reduce_mean(loss.detach().float()).item())
        diags.append(run.monitor.compute(step, out_))  # the diagnostics of the global batch (main process)
        run.step += 1
    grads = {n: p.grad.detach().clone() for n, p in run.method.named_parameters() if p.grad is not None}
    state = {k: v.detach().clone() for k, v in run.method.state_dict().items()}
    if dist.is_main():
        torch.save({"losses": losses, "diags": diags, "grads": grads, "state": state, "world": dist.world_size()},
                   out / f"{name}-w{dist.world_size()}.pt")
    dist.barrier()


def main() -> None:
    out, names = Path(sys.argv[1]), sys.argv[2].split(",")
    BASE.extend(sys.argv[3:])  # extra overrides, e.g. train.sync_bn=false
    torch.set_num_threads(1)
    for name in names:
        run_method(name, out)


if __name__ == "__main__":
    main()
