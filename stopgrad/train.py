"""The one shared training loop: single process, or one process per device under torchrun (DDP).

Read top to bottom: data order → loop (views, forward, backward, step, EMA, hooks, logging,
checkpoints, online kNN) → final evaluation and summary → entry points (train, resume, load_run).
Building a run (data, views, model, optimizer) is :mod:`stopgrad.build`'s; its state on disk
:mod:`stopgrad.run_state`'s; its frozen-feature evaluation :mod:`stopgrad.run_evaluation`'s.

Determinism: the data order of epoch ``e`` comes from a generator seeded with ``(seed, e)`` and the
views of step ``t`` from one seeded with ``(seed, t)``, so a run resumed from a checkpoint replays
exactly the batches and views the uninterrupted run would have seen.
"""

from __future__ import annotations

import sys
import time
import warnings
from pathlib import Path
from typing import Any

import torch
from torch import nn

from stopgrad import distributed as dist
from stopgrad import failpoints, rundir, time_budget
from stopgrad.build import Run, build_model, holdout_split, load_splits, seed_all, setup
from stopgrad.config import RunConfig, load_yaml
from stopgrad.errors import CheckpointError, StopgradError
from stopgrad.methods import ema_update
from stopgrad.optim import lr_at, set_lr
from stopgrad.precision import autocast
from stopgrad.run_evaluation import evaluate_knn, evaluate_linear, features
from stopgrad.run_state import ResumeWarning, load_state, restore, save
from stopgrad.stop_signal import StopRequest, stop_requests

__all__ = ["NonFiniteLossError", "Run", "RunInterrupted", "build_model", "evaluate_knn", "evaluate_linear",
           "features", "fit", "holdout_split", "load_run", "load_splits", "resume", "seed_all", "setup", "train",
           "train_step"]


class NonFiniteLossError(StopgradError, FloatingPointError):
    """The loss became NaN or infinite; the message names the step and the last good checkpoint."""


class RunInterrupted(KeyboardInterrupt):
    """Ctrl-C (SIGINT) or SIGTERM during training, after a checkpoint of the current step was written."""

    def __init__(self, run_dir: Path, step: int, signal_name: str = "SIGINT") -> None:
        super().__init__(f"interrupted at step {step}")
        self.run_dir, self.step, self.signal_name = run_dir, step, signal_name


def stop_requested(run: Run, stop: StopRequest) -> bool:
    """Whether a polite stop (:mod:`stopgrad.stop_signal`) was asked for. Under DDP every process
    must stop at the same step, so they agree on it by an all-reduce at each logging step."""
    if not dist.is_dist():
        return bool(stop)
    if run.step % run.cfg.train.log_every:
        return False
    return dist.all_reduce_sum(torch.tensor([float(bool(stop))], device=run.device)).item() > 0


# ------------------------------------------------------------------------------------ data order
def epoch_permutation(seed: int, epoch: int, n: int) -> torch.Tensor:
    return torch.randperm(n, generator=torch.Generator().manual_seed(seed * 100_003 + epoch))


def rank_rows(run: Run) -> slice:
    """This process's contiguous share of the global batch (all of it in one process)."""
    per = run.cfg.data.batch_size // dist.world_size()
    return slice(dist.rank() * per, (dist.rank() + 1) * per)


def batch_indices(run: Run, step: int, perm: torch.Tensor) -> torch.Tensor:
    """This process's share of the global batch at ``step``."""
    i = step % run.steps_per_epoch
    idx = perm[i * run.cfg.data.batch_size:(i + 1) * run.cfg.data.batch_size]
    return idx[rank_rows(run)]


def view_generator(run: Run, step: int) -> torch.Generator:
    """One stream per step, the same in every process: each draws the whole global batch's random
    numbers and uses its rows, so N processes make exactly the views one process would."""
    g = torch.Generator(device=run.device)
    g.manual_seed((run.cfg.train.seed * 1_000_003 + step) * 16)
    return g


# ------------------------------------------------------------------------------------------ loop
def train_step(run: Run, step: int, images: torch.Tensor,
               labels: torch.Tensor | None = None) -> tuple[torch.Tensor, dict[str, Any], Any]:
    """Views → forward → backward → optimizer step → EMA → method hook. Returns (loss, logs, output)."""
    cfg, method = run.cfg, run.method
    lr = lr_at(step, run.total_steps, run.warmup_steps, run.peak_lr, cfg.optim.min_lr_ratio)
    set_lr(run.optimizer, lr, run.peak_lr)
    if dist.world_size() > 1:
        views = run.views(images, generator=view_generator(run, step), rows=rank_rows(run),
                          total=cfg.data.batch_size)
    else:
        views = run.views(images, generator=view_generator(run, step))
    if cfg.train.channels_last:
        views = [v.contiguous(memory_format=torch.channels_last) for v in views]
    run.monitor.before_forward(step)
    with autocast(run.device, run.precision):
        out = run.model(views, step, labels) if run.method.uses_labels else run.model(views, step)
    run.monitor.after_forward()
    failpoints.hit("step.forward")
    loss = out.loss
    if cfg.train.stop_on_nan and not torch.isfinite(loss):
        last = run.run_dir / rundir.CHECKPOINT
        raise NonFiniteLossError(
            f"loss is {loss.item()} at step {step} (epoch {step / run.steps_per_epoch:.2f}); nothing after the "
            f"last checkpoint ({last if last.exists() else 'none yet'}) was saved. Lower optim.lr, set "
            f"optim.clip_grad, or use train.precision=fp32")
    run.optimizer.zero_grad(set_to_none=True)
    if run.scaler:
        run.scaler.scale(loss).backward()
        run.scaler.unscale_(run.optimizer)
    else:
        loss.backward()
    method.before_optimizer_step(step)
    logs: dict[str, Any] = {"lr": lr}
    if cfg.optim.clip_grad:
        logs["grad_norm"] = nn.utils.clip_grad_norm_(method.parameters(), cfg.optim.clip_grad).item()
    if run.scaler:
        run.scaler.step(run.optimizer)
        run.scaler.update()
    else:
        run.optimizer.step()
    failpoints.hit("step.optimizer")
    pairs = method.ema_pairs()
    if pairs:
        m = method.ema_momentum(step, run.total_steps)
        for online, target in pairs:
            ema_update(target, online, m)
        logs["ema"] = m
    method.after_step(step, run.total_steps)
    return loss.detach(), logs, out


def fit(run: Run) -> dict[str, Any]:
    """Train from ``run.step`` to the end, then evaluate and write ``summary.json``."""
    from tqdm import tqdm

    cfg, main = run.cfg, dist.is_main()
    images_all = run.train_set.images.to(run.device) if run.device.type == "cuda" else run.train_set.images
    knn_every = round(cfg.eval.knn_every * run.steps_per_epoch) if cfg.eval.knn_every > 0 else 0
    bar = tqdm(total=run.total_steps, initial=run.step, disable=not (main and cfg.train.progress),
               desc=f"{cfg.method_name}", unit="step", dynamic_ncols=True)
    perm_epoch, perm = -1, None
    time_budget.start(run)
    t_window, n_window = time.perf_counter(), 0
    run.method.train()
    with stop_requests() as stop:  # SIGTERM: stop after this step, with a checkpoint
        try:
            while run.step < run.total_steps:
                step = run.step
                epoch = step // run.steps_per_epoch
                if epoch != perm_epoch:
                    perm, perm_epoch = epoch_permutation(cfg.train.seed, epoch, len(run.train_set)), epoch
                t0 = time.perf_counter()
                idx = batch_indices(run, step, perm)
                batch = images_all[idx.to(images_all.device)]
                if run.method.uses_labels:  # the supervised reference only: SSL methods never see a label
                    loss, logs, out = train_step(run, step, batch.to(run.device, non_blocking=True),
                                                 run.train_set.labels[idx].to(run.device))
                else:
                    loss, logs, out = train_step(run, step, batch.to(run.device, non_blocking=True))
                if run.monitor.due(step):  # every process: the diagnostics are of the global batch
                    diag = run.monitor.compute(step, out)
                    alarm = run.monitor.check(step, diag, out.logs)
                    if main:
                        rundir.append_metrics(run.run_dir, {"step": step + 1, "epoch": (step + 1) / run.steps_per_epoch,
                                                            **diag, **({"alarm": alarm} if alarm else {})})
                        run.monitor.scalars(step, diag)
                run.step += 1
                run.elapsed_s += time.perf_counter() - t0
                time_budget.after_step(run, bar)
                n_window += len(batch) * dist.world_size()
                if run.step % cfg.train.log_every == 0 or run.step == run.total_steps:
                    run.last_loss = dist.all_reduce_mean(loss.float()).item()
                    dt = time.perf_counter() - t_window
                    ips = n_window / dt if dt > 0 else 0.0
                    row = {"step": run.step, "epoch": run.step / run.steps_per_epoch, "loss": run.last_loss,
                           "images_per_s": ips, **{k: float(v) for k, v in {**logs, **out.logs}.items()}}
                    if main:
                        rundir.append_metrics(run.run_dir, row)
                        run.monitor.scalars(run.step, row)
                    bar.set_postfix(epoch=f"{run.step / run.steps_per_epoch:.2f}", loss=f"{run.last_loss:.4f}",
                                    img_s=f"{ips:.0f}")
                    t_window, n_window = time.perf_counter(), 0
                bar.update(1)
                if knn_every and run.step % knn_every == 0 and run.step < run.total_steps and main:
                    t_knn = time.perf_counter()
                    acc = evaluate_knn(run, cfg.eval.knn_train_limit, point="knn.online")
                    run.knn_online_s += time.perf_counter() - t_knn
                    if acc is not None:
                        # the online kNN (a training subset) is its own series, never one line with the final one
                        bank = min(cfg.eval.knn_train_limit or len(run.train_set), len(run.train_set))
                        row = {"step": run.step, "epoch": run.step / run.steps_per_epoch, "knn_online_top1": acc,
                               "knn_train_images": bank}
                        run.knn_history.append(row)
                        rundir.append_metrics(run.run_dir, row)
                        bar.write(f"step {run.step}: online kNN top-1 {acc:.4f}", file=sys.stderr)
                    t_window, n_window = time.perf_counter(), 0
                if run.step % cfg.train.ckpt_every == 0 and run.step < run.total_steps:
                    save(run)
                if run.step < run.total_steps and stop_requested(run, stop):
                    raise KeyboardInterrupt(stop.signal_name)
        except KeyboardInterrupt:
            bar.close()
            run.monitor.close()
            save(run)  # a clean stop keeps everything done so far
            raise RunInterrupted(run.run_dir, run.step, stop.signal_name or "SIGINT") from None
        except BaseException:
            run.monitor.close()
            raise
        finally:
            bar.close()  # before any error is printed, so it does not land on the bar's line
    save(run)
    try:
        summary = finish(run, run.last_loss)
        run.monitor.trackers.summary(summary)
    finally:
        run.monitor.close()
    return summary


def finish(run: Run, last_loss: float) -> dict[str, Any]:
    """Final kNN (and linear probe when ``eval.linear``), written to ``summary.json``."""
    if not dist.is_main():
        dist.barrier()
        return {}
    cfg = run.cfg
    t0 = time.perf_counter()
    knn = evaluate_knn(run)
    knn_s = time.perf_counter() - t0
    if knn is not None:
        rundir.append_metrics(run.run_dir, {"step": run.step, "epoch": run.step / run.steps_per_epoch,
                                            "knn_top1": knn, "final": True,
                                            "knn_train_images": int((run.train_set.labels >= 0).sum())})
    summary: dict[str, Any] = {
        "method": cfg.method_name, "dataset": cfg.data.dataset, "preset": cfg.preset,
        "backbone": cfg.model.backbone, "epochs": round(run.step / run.steps_per_epoch, 3), "steps": run.step,
        "batch_size": cfg.data.batch_size, "final_loss": last_loss, "knn_top1": knn,
        "knn": {"k": cfg.eval.knn_k, "t": cfg.eval.knn_t}, "knn_s": round(knn_s, 2), "wall_s": round(run.elapsed_s, 2),
        "images_per_s": round(run.step * cfg.data.batch_size / max(run.elapsed_s, 1e-9), 1),
        "device": str(run.device), "precision": run.precision, "world_size": dist.world_size(),
        "per_process_batch": cfg.data.batch_size // dist.world_size(), "peak_lr": run.peak_lr,
        "sync_bn": bool(dist.world_size() > 1 and cfg.train.sync_bn),
        "diag_s": round(run.monitor.cost_s, 3), "diag_fraction": round(run.monitor.cost_s / max(run.elapsed_s, 1e-9), 4),
        "knn_online_s": round(run.knn_online_s, 2),
        "knn_online_fraction": round(run.knn_online_s / max(run.elapsed_s, 1e-9), 4),
        "collapse_alarm": run.monitor.alarmed,
        "run_dir": str(run.run_dir), **time_budget.summary(run),
    }
    summary["eval_split"] = run.test_set.split if run.test_set is not None else None
    if cfg.eval.linear:
        t0 = time.perf_counter()
        summary.update(evaluate_linear(run) or {"linear_top1": None})
        summary["linear_s"] = round(time.perf_counter() - t0, 2)  # without the features the kNN extracted
    run.feature_cache.clear()
    summary["eval_fraction"] = round((knn_s + summary.get("linear_s", 0.0)) / max(run.elapsed_s, 1e-9), 4)
    rundir.write_summary(run.run_dir, summary)
    dist.barrier()
    return rundir.read_summary(run.run_dir)


# ---------------------------------------------------------------------------------- entry points
def train(cfg: RunConfig) -> dict[str, Any]:
    """Start a new run from a resolved config; returns the summary."""
    return fit(setup(cfg))


def resume(run_dir: str | Path) -> dict[str, Any]:
    """Continue a killed or interrupted run from its newest whole checkpoint.

    A run killed before its first checkpoint starts over from step 0 in the same folder; a
    finished run returns its summary (with ``already_finished`` set) without training.
    """
    run_dir = rundir.require_run_dir(Path(run_dir))
    cfg = load_yaml(run_dir / "config.yaml")
    try:
        state, path = load_state(run_dir)
    except CheckpointError as e:
        if not str(e).startswith("no checkpoint in"):
            raise
        state, path = None, None
        warnings.warn(f"{run_dir} has no checkpoint yet (killed before train.ckpt_every steps); starting it "
                      "over from step 0", ResumeWarning, stacklevel=2)
    run = setup(cfg, run_dir=run_dir)
    if state is not None:
        restore(run, state, path)
    if dist.is_main():
        sizes = state.get("logs") if state else {name: 0 for name in rundir.LOGS}
        rundir.truncate_rows(run_dir, sizes, run.step)
    if run.step >= run.total_steps and (run_dir / "summary.json").exists() and \
            "knn_top1" in rundir.read_summary(run_dir):
        return {**rundir.read_summary(run_dir), "already_finished": True}
    return fit(run)


def load_run(run_dir: str | Path, random_init: bool = False) -> Run:
    """A finished (or checkpointed) run rebuilt with its weights, for evaluation commands.

    With ``random_init`` the weights are left as initialised from the run's seed: the baseline
    a trained backbone should beat.
    """
    run_dir = rundir.require_run_dir(Path(run_dir))
    cfg = load_yaml(run_dir / "config.yaml")
    state, path = (None, None) if random_init else load_state(run_dir)
    run = setup(cfg, run_dir=run_dir)
    if state is not None:
        restore(run, state, path)
    return run
