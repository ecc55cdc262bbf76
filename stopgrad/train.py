"""The one shared training loop: single process, or one process per device under torchrun (DDP).

Read top to bottom: set-up → data → model → optimizer → resume → loop (views, forward, backward,
step, EMA, hooks, logging, checkpoints, online kNN) → final evaluation and summary.

Determinism: the data order of epoch ``e`` comes from a generator seeded with ``(seed, e)`` and the
views of step ``t`` from one seeded with ``(seed, t)``, so a run resumed from a checkpoint replays
exactly the batches and views the uninterrupted run would have seen.
"""

from __future__ import annotations

import sys
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from stopgrad import distributed as dist
from stopgrad import failpoints, rundir, sync_bn
from stopgrad.augment import build_views
from stopgrad.backbones import build_backbone
from stopgrad.config import ConfigError, RunConfig, load_yaml
from stopgrad.data import ImageDataset, load_dataset
from stopgrad.errors import CheckpointError, StopgradError
from stopgrad.methods import Method, ema_update, get_method
from stopgrad.monitor import Monitor
from stopgrad.optim import build_optimizer, lr_at, peak_learning_rate, set_lr
from stopgrad.precision import autocast, resolve_device, resolve_precision
from stopgrad.run_evaluation import evaluate_knn, evaluate_linear, features
from stopgrad.run_state import ResumeWarning, load_state, restore, save

__all__ = ["NonFiniteLossError", "Run", "RunInterrupted", "evaluate_knn", "evaluate_linear", "features", "fit",
           "load_run", "resume", "setup", "train", "train_step"]


class NonFiniteLossError(StopgradError, FloatingPointError):
    """The loss became NaN or infinite; the message names the step and the last good checkpoint."""


class RunInterrupted(KeyboardInterrupt):
    """Ctrl-C during training, after a checkpoint of the current step was written."""

    def __init__(self, run_dir: Path, step: int) -> None:
        super().__init__(f"interrupted at step {step}")
        self.run_dir, self.step = run_dir, step


@dataclass
class Run:
    """Everything a training run holds, built by :func:`setup`."""

    cfg: RunConfig
    run_dir: Path
    device: torch.device
    precision: str
    train_set: ImageDataset
    test_set: ImageDataset | None
    views: Any
    method: Method
    model: nn.Module  # the method, wrapped in DDP under torchrun
    optimizer: torch.optim.Optimizer
    scaler: torch.amp.GradScaler | None
    steps_per_epoch: int
    total_steps: int
    peak_lr: float
    warmup_steps: int
    monitor: Monitor | None = None
    step: int = 0
    elapsed_s: float = 0.0
    last_loss: float = float("nan")
    knn_history: list[dict[str, float]] = field(default_factory=list)


# ----------------------------------------------------------------------------------------- set-up
def seed_all(seed: int, deterministic: bool) -> None:
    torch.manual_seed(seed)
    if deterministic:
        torch.use_deterministic_algorithms(True, warn_only=True)
        torch.backends.cudnn.benchmark = False


def build_model(cfg: RunConfig, in_channels: int, num_classes: int = 10) -> Method:
    """Backbone + method, seeded from ``cfg.train.seed``; a value they refuse is a ConfigError."""
    torch.manual_seed(cfg.train.seed)
    m = cfg.model
    try:
        backbone, feat_dim = build_backbone(m.backbone, in_channels=in_channels, width=m.width, stem=m.stem,
                                            zero_init_residual=m.zero_init_residual, **m.options)
    except (ValueError, TypeError) as e:
        raise ConfigError(f"model.backbone={m.backbone!r} with model.options={m.options}: {e}") from e
    cls = get_method(cfg.method_name)
    try:
        if cls.uses_labels:
            return cls(backbone, feat_dim, cfg.method, num_classes=num_classes)
        return cls(backbone, feat_dim, cfg.method)
    except (ValueError, TypeError) as e:
        raise ConfigError(f"method.name={cfg.method_name!r}: {e}") from e


@torch.no_grad()
def check_backbone_takes(backbone: nn.Module, views: list[torch.Tensor], cfg: RunConfig) -> None:
    """One forward of each view size through the backbone (eval mode, CPU, two images), so a size
    the backbone cannot take (an ``mlp`` with multi-crop, a tiny image through the ImageNet stem) is
    a config error before the run folder exists."""
    was_training = backbone.training
    backbone.eval()
    try:
        for size in sorted({tuple(v.shape[-2:]) for v in views}):
            x = next(v for v in views if tuple(v.shape[-2:]) == size)
            backbone(x.float())
    except (ValueError, RuntimeError) as e:
        first = str(e).splitlines()[0] if str(e) else type(e).__name__
        raise ConfigError(f"model.backbone={cfg.model.backbone!r} cannot take the {size[0]}x{size[1]} views of "
                          f"data.views={cfg.data.views!r} (local_views={cfg.data.local_views}): {first}") from e
    finally:
        backbone.train(was_training)


def load_splits(cfg: RunConfig) -> tuple[ImageDataset, ImageDataset | None]:
    """The pre-training split (STL-10: train+unlabeled) and the labelled test split."""
    d = cfg.data
    train_split = "train+unlabeled" if d.dataset == "stl10" else "train"
    opts = dict(root=d.root, download=d.download, image_size=d.image_size, verify=d.verify, label_set=d.label_set)
    train = load_dataset(d.dataset, train_split, **opts)
    if d.holdout:
        return holdout_split(train, d.holdout)
    try:
        test = load_dataset(d.dataset, "test", **opts)
    except FileNotFoundError:
        test = None
    return train, test


def holdout_split(train: ImageDataset, n: int) -> tuple[ImageDataset, ImageDataset]:
    """``data.holdout=n``: the last ``n`` labelled training images become the evaluation split and
    are never trained on, so recipes are chosen without the test set."""
    labelled = (train.labels >= 0).nonzero().flatten()
    if n >= len(labelled) - 1:
        raise ConfigError(f"data.holdout={n}: the training split has only {len(labelled)} labelled images")
    held = labelled[-n:]
    keep = torch.ones(len(train), dtype=torch.bool)
    keep[held] = False
    rest = ImageDataset(train.images[keep], train.labels[keep], train.classes, train.name, train.split)
    val = ImageDataset(train.images[held], train.labels[held], train.classes, train.name, f"{train.split}[-{n}:]")
    return rest, val


def setup(cfg: RunConfig, run_dir: Path | None = None) -> Run:
    """Build a fresh run (or the skeleton a checkpoint is loaded into).

    A new run's folder is created last, once the data has loaded and the model is built, so a
    run that cannot start leaves nothing behind.
    """
    device = resolve_device(cfg.train.device)
    dist.init_from_env(str(device))
    if device.type == "cuda" and dist.is_dist():
        device = torch.device("cuda", dist.rank() % torch.cuda.device_count())
        torch.cuda.set_device(device)
    precision = resolve_precision(cfg.train.precision, device)
    if cfg.train.num_threads:
        torch.set_num_threads(cfg.train.num_threads)
    seed_all(cfg.train.seed, cfg.train.deterministic)
    # data: resident uint8 tensors; on CUDA the whole training set moves to the device once
    train_set, test_set = load_splits(cfg)
    per_rank_batch = cfg.data.batch_size // dist.world_size()
    steps_per_epoch = len(train_set) // cfg.data.batch_size
    if steps_per_epoch < 1:
        raise ConfigError(f"data.batch_size={cfg.data.batch_size} exceeds the {len(train_set)} training images; "
                          f"lower it")
    if per_rank_batch < 2:
        raise ConfigError(f"data.batch_size={cfg.data.batch_size} gives < 2 images per process")
    if cfg.data.batch_size % dist.world_size():
        raise ConfigError(f"data.batch_size={cfg.data.batch_size} is not divisible by the {dist.world_size()} "
                          f"processes; use a multiple of {dist.world_size()}")
    views = build_views(cfg.data.views, n_views=cfg.data.n_views, local_views=cfg.data.local_views,
                        local_overrides=cfg.data.local_overrides, **cfg.data.view_overrides)
    try:  # a dry run on two images: a colour preset on grayscale data fails here, not at step 0
        sample = views(train_set.images[:2], generator=torch.Generator().manual_seed(0))
    except (ValueError, TypeError, RuntimeError) as e:
        raise ConfigError(f"data.views={cfg.data.views!r} does not fit {cfg.data.dataset}'s images "
                          f"{tuple(train_set.images.shape[1:])}: {e}") from e
    # model
    method = build_model(cfg, in_channels=train_set.images.shape[1], num_classes=train_set.num_classes)
    check_backbone_takes(method.backbone, sample, cfg)
    if dist.world_size() > 1 and cfg.train.sync_bn:
        sync_bn.convert(method)  # before the optimizer sees the parameters
    method = method.to(device)
    if cfg.train.channels_last:
        method = method.to(memory_format=torch.channels_last)
    model: nn.Module = method
    if dist.is_dist():
        model = nn.parallel.DistributedDataParallel(method, device_ids=[device] if device.type == "cuda" else None)
    # optimizer and schedule (per step, precomputed from the config)
    total_steps = cfg.train.steps or max(1, round(cfg.train.epochs * steps_per_epoch))
    peak = peak_learning_rate(cfg.optim, cfg.data.batch_size)
    optimizer = build_optimizer(method.param_groups(), cfg.optim, peak)
    scaler = torch.amp.GradScaler("cuda") if precision == "fp16" else None
    if run_dir is None:
        run_dir = Path(dist.broadcast_object(str(rundir.create_run_dir(cfg)) if dist.is_main() else None))
    if dist.world_size() > 1 and dist.is_main() and cfg.train.progress:
        print(f"stopgrad: {dist.world_size()} processes: global batch {cfg.data.batch_size} ({per_rank_batch} per "
              f"process), peak lr {peak:.4g} (optim.lr={cfg.optim.lr:g}, {cfg.optim.lr_scaling} scaling with the global "
              f"batch), {sync_bn.count(method)} BN layers with global statistics", file=sys.stderr)
    monitor = Monitor(Path(run_dir), cfg.train, method, enabled=dist.is_main(), config=cfg.to_dict())
    return Run(cfg=cfg, run_dir=Path(run_dir), device=device, precision=precision, train_set=train_set,
               test_set=test_set, views=views, method=method, model=model, optimizer=optimizer, scaler=scaler,
               steps_per_epoch=steps_per_epoch, total_steps=total_steps, peak_lr=peak,
               warmup_steps=round(cfg.optim.warmup_epochs * steps_per_epoch), monitor=monitor)


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
    t_window, n_window = time.perf_counter(), 0
    run.method.train()
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
                acc = evaluate_knn(run, cfg.eval.knn_train_limit, point="knn.online")
                if acc is not None:
                    # the online kNN (a training subset) is its own series, never one line with the final one
                    row = {"step": run.step, "epoch": run.step / run.steps_per_epoch, "knn_online_top1": acc,
                           "knn_train_images": min(cfg.eval.knn_train_limit or len(run.train_set), len(run.train_set))}
                    run.knn_history.append(row)
                    rundir.append_metrics(run.run_dir, row)
                    bar.write(f"step {run.step}: online kNN top-1 {acc:.4f}", file=sys.stderr)
                t_window, n_window = time.perf_counter(), 0
            if run.step % cfg.train.ckpt_every == 0 and run.step < run.total_steps:
                save(run)
    except KeyboardInterrupt:
        bar.close()
        run.monitor.close()
        save(run)  # a clean stop keeps everything done so far
        raise RunInterrupted(run.run_dir, run.step) from None
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
    knn = evaluate_knn(run)
    if knn is not None:
        rundir.append_metrics(run.run_dir, {"step": run.step, "epoch": run.step / run.steps_per_epoch,
                                            "knn_top1": knn, "final": True,
                                            "knn_train_images": int((run.train_set.labels >= 0).sum())})
    summary: dict[str, Any] = {
        "method": cfg.method_name, "dataset": cfg.data.dataset, "preset": cfg.preset,
        "backbone": cfg.model.backbone, "epochs": round(run.step / run.steps_per_epoch, 3), "steps": run.step,
        "batch_size": cfg.data.batch_size, "final_loss": last_loss, "knn_top1": knn,
        "knn": {"k": cfg.eval.knn_k, "t": cfg.eval.knn_t}, "wall_s": round(run.elapsed_s, 2),
        "images_per_s": round(run.step * cfg.data.batch_size / max(run.elapsed_s, 1e-9), 1),
        "device": str(run.device), "precision": run.precision, "world_size": dist.world_size(),
        "per_process_batch": cfg.data.batch_size // dist.world_size(), "peak_lr": run.peak_lr,
        "sync_bn": bool(dist.world_size() > 1 and cfg.train.sync_bn),
        "diag_s": round(run.monitor.cost_s, 3), "diag_fraction": round(run.monitor.cost_s / max(run.elapsed_s, 1e-9), 4),
        "collapse_alarm": run.monitor.alarmed,
        "run_dir": str(run.run_dir),
    }
    summary["eval_split"] = run.test_set.split if run.test_set is not None else None
    if cfg.eval.linear:
        summary.update(evaluate_linear(run) or {"linear_top1": None})
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
