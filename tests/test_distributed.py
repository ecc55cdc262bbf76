"""torchrun (DDP, gloo on CPU): two processes train a tiny run and agree on the weights; the
gather keeps gradients."""

import json
import os
import subprocess
import sys
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parent.parent


def test_torchrun_two_processes(tmp_path):
    args = ["data.dataset=synthetic", "data.batch_size=32", "model.backbone=convnet", "model.width=0.25",
            "method.name=byol", "method.heads=small", "train.steps=3", "train.log_every=1", "eval.knn_every=0", "eval.knn_k=5",
            f"train.out_dir={tmp_path}", "train.name=ddp", "train.progress=false", "train.num_threads=1"]
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node=2", "--master_port=29533",
           "-m", "stopgrad", "train", *args]
    res = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stderr[-3000:]
    summary = json.loads((tmp_path / "ddp" / "summary.json").read_text())
    assert summary["world_size"] == 2 and summary["steps"] == 3
    rows = [json.loads(line) for line in open(tmp_path / "ddp" / "metrics.jsonl")]
    assert sum("loss" in r for r in rows) == 3  # only rank 0 writes


def test_gather_with_grad_is_identity_without_process_group():
    from stopgrad.distributed import all_reduce_mean, gather_with_grad

    x = torch.randn(4, 3, requires_grad=True)
    y = gather_with_grad(x)
    assert y is x
    assert torch.equal(all_reduce_mean(x.detach()), x.detach())
