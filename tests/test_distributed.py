"""torchrun (DDP, gloo on CPU): two processes train a tiny run and agree on the weights; the
gather keeps gradients."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
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


WORKER = r'''
import json, os, sys, torch, torch.distributed as dist
import torch.nn.functional as F
from stopgrad import distributed as sd
from stopgrad.losses import info_nce, sinkhorn
dist.init_process_group("gloo")
r, w = dist.get_rank(), dist.get_world_size()
g = torch.Generator().manual_seed(0)
za, zb = torch.randn(8, 5, generator=g), torch.randn(8, 5, generator=g)
scores = F.normalize(torch.randn(8, 4, generator=g), dim=1) @ F.normalize(torch.randn(6, 4, generator=g), dim=1).T
sl = slice(4 * r, 4 * r + 4)
a = za[sl].clone().requires_grad_(True)
b = zb[sl].clone()
A = sd.gather_with_grad(F.normalize(a, dim=1))
B = sd.gather_with_grad(F.normalize(b, dim=1))
loss = info_nce(a, b, 0.5, all_a=A, all_b=B, offset=4 * r)
loss.backward()
q = sinkhorn(scores[sl], 0.05, 3, sd.all_reduce_sum)
out = {"loss": loss.item(), "grad": a.grad.tolist(), "q": q.tolist()}
json.dump(out, open(os.path.join(sys.argv[1], f"rank{r}.json"), "w"))
dist.destroy_process_group()
'''


def test_simclr_negatives_and_sinkhorn_are_global_under_ddp(tmp_path):
    import torch.nn.functional as F

    from stopgrad.losses import info_nce, sinkhorn

    script = tmp_path / "worker.py"
    script.write_text(WORKER)
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node=2", "--master_port=29534",
           str(script), str(tmp_path)]
    res = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stderr[-3000:]
    ranks = [json.loads((tmp_path / f"rank{r}.json").read_text()) for r in range(2)]
    g = torch.Generator().manual_seed(0)
    za, zb = torch.randn(8, 5, generator=g), torch.randn(8, 5, generator=g)
    scores = F.normalize(torch.randn(8, 4, generator=g), dim=1) @ F.normalize(torch.randn(6, 4, generator=g), dim=1).T
    a = za.clone().requires_grad_(True)
    whole = info_nce(a, zb, 0.5)
    whole.backward()
    # the mean of the per-rank losses is the whole-batch loss; the gathered gradient matches it
    assert (ranks[0]["loss"] + ranks[1]["loss"]) / 2 == pytest.approx(whole.item(), rel=1e-5)
    grad = torch.tensor(ranks[0]["grad"] + ranks[1]["grad"]) / 2  # DDP averages over the 2 ranks
    assert torch.allclose(grad, a.grad, atol=1e-5)
    q = torch.tensor(ranks[0]["q"] + ranks[1]["q"])
    assert torch.allclose(q, sinkhorn(scores, 0.05, 3), atol=1e-5)


def test_torchrun_run_killed_then_resumed_under_torchrun_equals_uninterrupted(tmp_path):
    """Both processes are SIGKILLed at step 5 (past the checkpoint at 4); `torchrun ... resume` finishes it,
    every process loading the same checkpoint, with the uninterrupted 2-process run's result."""
    args = ["data.dataset=synthetic", "data.batch_size=32", "model.backbone=convnet", "model.width=0.25",
            "method.name=simsiam", "method.heads=small", "train.steps=8", "train.ckpt_every=4", "train.log_every=1",
            "eval.knn_every=0", "eval.knn_k=5", f"train.out_dir={tmp_path}", "train.progress=false",
            "train.num_threads=1"]
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    env.pop("STOPGRAD_FAILPOINT", None)

    def torchrun(port, *cli, extra_env=None):
        cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node=2", f"--master_port={port}",
               "-m", "stopgrad", *cli]
        return subprocess.run(cmd, env={**env, **(extra_env or {})}, capture_output=True, text=True, timeout=300)

    ref = torchrun(29541, "train", *args, "train.name=ref")
    assert ref.returncode == 0, ref.stderr[-3000:]
    killed = torchrun(29542, "train", *args, "train.name=killed", extra_env={"STOPGRAD_FAILPOINT": "step.forward:6"})
    assert killed.returncode != 0 and not (tmp_path / "killed" / "summary.json").exists()
    assert torch.load(tmp_path / "killed" / "checkpoint.pt", weights_only=True)["step"] == 4
    resumed = torchrun(29543, "resume", str(tmp_path / "killed"))
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    a = json.loads((tmp_path / "ref" / "summary.json").read_text())
    b = json.loads((tmp_path / "killed" / "summary.json").read_text())
    assert a["knn_top1"] == b["knn_top1"] and a["final_loss"] == b["final_loss"] and b["world_size"] == 2
    wa = torch.load(tmp_path / "ref" / "checkpoint.pt", weights_only=True)["model"]
    wb = torch.load(tmp_path / "killed" / "checkpoint.pt", weights_only=True)["model"]
    assert all(torch.equal(wa[k], wb[k]) for k in wa)
    steps = [json.loads(line)["step"] for line in open(tmp_path / "killed" / "metrics.jsonl") if '"loss"' in line]
    assert steps == list(range(1, 9))
