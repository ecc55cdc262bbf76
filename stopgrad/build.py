"""Building a run: the data, the views, the model (and its global BN under torchrun), the optimizer
and the schedule, and the :class:`Run` that holds them. The loop in :mod:`stopgrad.train` trains it.

A new run's folder is created last, once the data has loaded, one batch of views has gone through
the backbone and the model is built, so a run that cannot start leaves nothing behind.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from stopgrad import distributed as dist
from stopgrad import rundir, sync_bn
from stopgrad.augment import build_views
from stopgrad.backbones import build_backbone
from stopgrad.config import ConfigError, RunConfig
from stopgrad.data import ImageDataset, load_dataset
from stopgrad.methods import Method, get_method
from stopgrad.monitor import Monitor
from stopgrad.optim import build_optimizer, peak_learning_rate
from stopgrad.precision import resolve_device, resolve_precision


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
    elapsed_s: float = 0.0  # training time, without the online kNN (knn_online_s)
    knn_online_s: float = 0.0
    last_loss: float = float("nan")
    knn_history: list[dict[str, float]] = field(default_factory=list)
    budget: dict[str, Any] = field(default_factory=dict)  # train.minutes' timing and decision (stopgrad.time_budget)
    # frozen features of the current step, shared by the final kNN and linear probe (stopgrad.run_evaluation)
    feature_cache: dict[tuple[Any, ...], torch.Tensor] = field(default_factory=dict, repr=False)


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
