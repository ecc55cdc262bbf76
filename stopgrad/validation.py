"""Range and cross-field checks of a :class:`~stopgrad.config.RunConfig`, run whenever one is read.

Types are checked as the config is built (:func:`stopgrad.config.coerce`, which also refuses NaN
and infinities); this module checks what a type cannot say: ranges, names that must be in a
registry (dataset, views, backbone, stem, device), and combinations (a method's number of views,
CIFAR-100's coarse labels). Each failure is a :class:`~stopgrad.config.ConfigError` that names
the key, the value and the valid choices.
"""

from __future__ import annotations

import difflib
import inspect
import math
import re
from typing import Any

from stopgrad.config import ConfigError, RunConfig

DEVICE = re.compile(r"^(auto|cpu|mps|cuda(:\d+)?)$")
MAX_SEED = 2**31 - 1


def bad(key: str, value: Any, why: str) -> ConfigError:
    return ConfigError(f"{key}={value!r}: {why}")


def one_of(key: str, value: Any, options: list[str] | tuple[str, ...]) -> None:
    if value not in options:
        close = difflib.get_close_matches(str(value), list(options), n=1)
        hint = f"did you mean {close[0]!r}? " if close else ""
        raise bad(key, value, f"{hint}expected one of {', '.join(options)}")


def at_least(cfg_section: Any, prefix: str, minimum: float, *keys: str, optional: bool = False) -> None:
    for key in keys:
        value = getattr(cfg_section, key)
        if value is None and optional:
            continue
        if value < minimum:
            raise bad(f"{prefix}.{key}", value, f"must be >= {minimum:g}")


def positive(cfg_section: Any, prefix: str, *keys: str, optional: bool = False) -> None:
    for key in keys:
        value = getattr(cfg_section, key)
        if value is None and optional:
            continue
        if not value > 0:
            raise bad(f"{prefix}.{key}", value, "must be > 0")


def check_optim(cfg: RunConfig) -> None:
    o = cfg.optim
    one_of("optim.name", o.name, ("sgd", "lars"))
    one_of("optim.lr_scaling", o.lr_scaling, ("linear", "none"))
    positive(o, "optim", "lr", "lars_eta")
    positive(o, "optim", "clip_grad", optional=True)
    at_least(o, "optim", 0, "weight_decay", "warmup_epochs", "min_lr_ratio")
    if not 0 <= o.momentum < 1:
        raise bad("optim.momentum", o.momentum, "must lie in [0, 1), e.g. 0.9")
    if o.min_lr_ratio > 1:
        raise bad("optim.min_lr_ratio", o.min_lr_ratio, "must lie in [0, 1] (the final lr as a fraction of the peak)")


def check_train(cfg: RunConfig) -> None:
    t = cfg.train
    one_of("train.precision", t.precision, ("auto", "bf16", "fp16", "fp32"))
    if not DEVICE.match(t.device):
        raise bad("train.device", t.device, "expected auto, cpu, cuda, cuda:N or mps")
    positive(t, "train", "epochs")
    if t.steps is not None and t.steps < 1:
        raise bad("train.steps", t.steps, "must be >= 1; or train.steps=null to train for train.epochs")
    if t.minutes is not None:
        if not (isinstance(t.minutes, (int, float)) and math.isfinite(t.minutes) and t.minutes > 0):
            raise bad("train.minutes", t.minutes, "must be a positive number of minutes, e.g. 20; or train.minutes=null")
        if t.steps is not None:
            raise bad("train.steps", t.steps, "cannot be set with train.minutes (the run chooses its own length); "
                      "drop one of them")
    if not 0 <= t.seed <= MAX_SEED:
        raise bad("train.seed", t.seed, f"must lie in [0, {MAX_SEED}]")
    at_least(t, "train", 1, "log_every", "ckpt_every", "alarm_patience")
    at_least(t, "train", 1, "num_threads", optional=True)
    at_least(t, "train", 0, "diag_every", "spectrum_every")
    one_of("train.wandb_mode", t.wandb_mode, ("online", "offline"))
    if not t.out_dir:
        raise bad("train.out_dir", t.out_dir, "must name a folder, e.g. runs")
    if t.name is not None and (not t.name or t.name in (".", "..") or "/" in t.name or t.name.startswith(".")):
        raise bad("train.name", t.name, "must be a plain folder name (no '/', not hidden), or null for a timestamp")


def check_eval(cfg: RunConfig) -> None:
    e = cfg.eval
    at_least(e, "eval", 1, "knn_k", "linear_epochs", "linear_batch_size", "batch_size")
    at_least(e, "eval", 1, "knn_train_limit", optional=True)
    positive(e, "eval", "knn_t", "linear_lr")
    at_least(e, "eval", 0, "knn_every", "linear_weight_decay")
    one_of("eval.linear_protocol", e.linear_protocol, ("val-lbfgs", "sgd"))
    if not 0 < e.linear_val_fraction < 1:
        raise bad("eval.linear_val_fraction", e.linear_val_fraction, "must lie in (0, 1), e.g. 0.1667")
    if not e.linear_l2_grid or any(v < 0 for v in e.linear_l2_grid):
        raise bad("eval.linear_l2_grid", list(e.linear_l2_grid), "must be a non-empty list of penalties >= 0")


def check_data(cfg: RunConfig) -> None:
    from stopgrad.augment import PRESETS, build_views
    from stopgrad.data import DATASETS

    d = cfg.data
    one_of("data.dataset", d.dataset, tuple(DATASETS))
    one_of("data.views", d.views, tuple(sorted(PRESETS)))
    one_of("data.label_set", d.label_set, ("fine", "coarse"))
    if d.label_set == "coarse" and d.dataset != "cifar100":
        raise bad("data.label_set", d.label_set, f"only cifar100 has coarse labels; {d.dataset} has one label set "
                  "(use data.label_set=fine)")
    at_least(d, "data", 2, "batch_size", "n_views")
    at_least(d, "data", 0, "local_views", "holdout")
    at_least(d, "data", 8, "image_size", optional=True)
    max_views = cfg_method_max_views(cfg)
    if max_views is not None and d.n_views + d.local_views > max_views:
        raise bad("data.n_views", d.n_views, f"{cfg.method_name} takes exactly {max_views} views "
                  f"(n_views={d.n_views}, local_views={d.local_views}); set data.n_views=2 data.local_views=0")
    try:
        build_views(d.views, n_views=d.n_views, local_views=d.local_views, local_overrides=d.local_overrides,
                    **d.view_overrides)
    except (ValueError, TypeError) as e:
        raise ConfigError(f"data.view_overrides / data.local_overrides: {e}") from e


def cfg_method_max_views(cfg: RunConfig) -> int | None:
    from stopgrad.methods import get_method

    return get_method(cfg.method_name).max_views


def check_model(cfg: RunConfig) -> None:
    from stopgrad.backbones import BACKBONES, STEMS

    m = cfg.model
    one_of("model.backbone", m.backbone, tuple(BACKBONES))
    one_of("model.stem", m.stem, STEMS)
    positive(m, "model", "width")
    if m.width > 64:
        raise bad("model.width", m.width, "must be <= 64 (a channel multiplier such as 0.5, 1 or 2)")
    accepted = [p for p in inspect.signature(BACKBONES[m.backbone]).parameters
                if p not in ("in_channels", "width", "stem", "zero_init_residual")]
    unknown = sorted(set(m.options) - set(accepted))
    if unknown:
        raise bad("model.options", m.options, f"{m.backbone} does not take {', '.join(unknown)} "
                  f"(its options: {', '.join(accepted) or 'none'})")


def check_values(cfg: RunConfig) -> None:
    """Every range and cross-field check; raises :class:`ConfigError` at the first failure."""
    check_optim(cfg)
    check_train(cfg)
    check_eval(cfg)
    check_data(cfg)
    check_model(cfg)
