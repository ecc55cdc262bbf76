"""Typed run configuration: dataclasses, YAML presets, dotted ``key=value`` overrides, validation.

A run is described by one :class:`RunConfig`. Presets are YAML files under ``configs/`` (for example
``configs/fashion-mnist/simsiam.yaml``); command-line overrides are dotted keys
(``train.epochs=5 method.pred_lr_mult=10``). Every key is checked against the dataclass that owns
it: an unknown key or a wrongly typed value raises :class:`ConfigError` naming it and suggesting
the closest valid key. The ``method`` section holds ``name`` plus the fields of the chosen method's
own ``Config`` dataclass, so a key no method reads can never pass silently.
"""

from __future__ import annotations

import dataclasses
import difflib
import math
import os
import types
import typing
from dataclasses import dataclass, field, fields, is_dataclass
from pathlib import Path
from typing import Any

import yaml

from stopgrad.errors import ConfigError
from stopgrad.presets import CONFIG_DIR, list_presets, load_preset, merge, read_yaml

__all__ = ["CONFIG_DIR", "ConfigError", "DataConfig", "EvalConfig", "ModelConfig", "OptimConfig", "RunConfig",
           "TrainConfig", "coerce", "dump_yaml", "from_dict", "list_presets", "load_preset", "load_yaml",
           "read_yaml", "resolve"]


@dataclass
class DataConfig:
    """Where the images come from and how views are made."""

    dataset: str = "fashion-mnist"  # fashion-mnist | mnist | cifar10 | cifar100 | stl10 | image-folder | synthetic
    root: str | None = None  # searched first; then $STOPGRAD_DATA, ~/.cache/stopgrad, system dirs
    download: bool = True  # fetch missing files from the official location (md5-verified)
    verify: bool = True  # check archives against the official md5; false accepts a re-pack, with a warning
    label_set: str = "fine"  # CIFAR-100: fine (100 classes) or coarse (20 superclasses)
    views: str = "28-gray"  # augmentation preset from stopgrad.augment.PRESETS
    n_views: int = 2  # global views per image
    image_size: int | None = None  # only for image-folder datasets (decoded size)
    batch_size: int = 256  # global batch size (split across processes under torchrun)
    holdout: int = 0  # > 0: train on all but the last N training images and evaluate on those N (recipe choice)
    view_overrides: dict[str, Any] = field(default_factory=dict)  # ViewConfig fields for every view
    local_views: int = 0  # multi-crop (SwAV Sec. 3.2): extra small crops after the n_views global ones
    local_overrides: dict[str, Any] = field(default_factory=dict)  # ViewConfig fields of the local crops


@dataclass
class ModelConfig:
    """Backbone choice (see stopgrad.backbones.BACKBONES)."""

    backbone: str = "resnet18"  # resnet18 | resnet50 | resnet9 | convnet | mlp
    stem: str = "cifar"  # ResNets: cifar (3x3, no max-pool) | imagenet (7x7 + max-pool) | small
    width: float = 1.0  # channel multiplier
    zero_init_residual: bool = False  # ResNets: zero the last BN of each block (Goyal et al. 2017)
    options: dict[str, Any] = field(default_factory=dict)  # backbone-specific, e.g. {pool: 3} for convnet


@dataclass
class OptimConfig:
    """Optimizer and learning-rate schedule.

    The learning rate is ``lr * batch_size / 256`` when ``lr_scaling == "linear"`` (Goyal et al. 2017,
    as used by SimSiam and BYOL), warmed up linearly for ``warmup_epochs`` then cosine-decayed to
    ``min_lr_ratio * peak`` (Loshchilov & Hutter 2017).
    """

    name: str = "sgd"  # sgd | lars
    lr: float = 0.05  # base learning rate, per 256 images when lr_scaling=linear
    lr_scaling: str = "linear"  # linear | none
    momentum: float = 0.9  # SGD / LARS momentum, in [0, 1)
    weight_decay: float = 5e-4  # L2 on weights (not on biases and norms when exclude_bias_norm)
    warmup_epochs: float = 0.0  # linear warm-up, then cosine decay
    min_lr_ratio: float = 0.0  # final lr as a fraction of the peak
    clip_grad: float | None = None  # max global grad norm; None disables
    lars_eta: float = 0.02  # LARS trust coefficient
    exclude_bias_norm: bool = True  # no weight decay / LARS adaptation on bias and norm params


@dataclass
class TrainConfig:
    """Loop, precision, logging and checkpointing."""

    epochs: float = 10.0  # training length in epochs (train.steps overrides it)
    steps: int | None = None  # total optimizer steps; overrides epochs when set
    minutes: float | None = None  # minutes of training steps; the run fixes its epochs to fit (stopgrad.time_budget)
    seed: int = 0  # seeds the model, the data order of each epoch and the views of each step
    deterministic: bool = False  # torch deterministic algorithms (slower)
    device: str = "auto"  # auto | cpu | cuda | cuda:N
    precision: str = "auto"  # auto (bf16 on CPU/CUDA) | bf16 | fp16 | fp32
    channels_last: bool = True  # NHWC memory format (faster with bf16 on CPU and CUDA)
    num_threads: int | None = None  # torch intra-op threads on CPU; None leaves torch's default
    log_every: int = 20  # steps between metrics.jsonl rows
    ckpt_every: int = 500  # steps between checkpoints (one is always written at the end)
    out_dir: str = "runs"  # where run folders are created
    name: str | None = None  # run folder name; default <preset>-<timestamp> (<dataset>-<method>-<timestamp>)
    progress: bool = True  # progress bar and evaluation messages on the console
    stop_on_nan: bool = True  # stop with an error naming the step when the loss is NaN or infinite
    diag_every: int = 50  # steps between collapse/dynamics diagnostics (0 disables)
    spectrum_every: int = 500  # steps between saved eigenspectra (spectra.jsonl; 0 disables)
    alarm_patience: int = 3  # consecutive diagnostic checks a collapse condition must hold
    stop_on_collapse: bool = False  # stop the run when an alarm fires, keeping the last good checkpoint
    sync_bn: bool = True  # under torchrun: every BN normalises with the global batch's statistics
    tensorboard: bool = False  # also log scalars to TensorBoard (needs the tensorboard package)
    wandb: bool = False  # also log scalars to Weights & Biases (needs the wandb package)
    wandb_project: str = "stopgrad"  # W&B project
    wandb_name: str | None = None  # W&B run name; default the run folder's name
    wandb_mode: str = "online"  # online | offline (writes RUN/wandb for a later `wandb sync`)


@dataclass
class EvalConfig:
    """Frozen-feature evaluation: weighted kNN (Wu et al. 2018) and a linear probe."""

    knn_k: int = 200  # neighbours that vote (Wu et al. 2018)
    knn_t: float = 0.1  # temperature of the exp(sim / T) vote weights
    knn_every: float = 1.0  # epochs between online kNN evaluations; 0 = only at the end
    knn_train_limit: int | None = None  # use at most this many train images for online kNN
    linear: bool = False  # run the linear probe at the end of training
    linear_protocol: str = "val-lbfgs"  # val-lbfgs (L2 chosen on held-out train; stopgrad.probe) | sgd (fixed epochs)
    linear_l2_grid: tuple[float, ...] = (1e-1, 1e-2, 1e-3, 1e-4, 1e-5)  # val-lbfgs: the penalties tried
    linear_val_fraction: float = 1 / 6  # val-lbfgs: the last fraction of the labelled train split held out
    linear_epochs: int = 100  # sgd only
    linear_lr: float = 0.1  # sgd only
    linear_batch_size: int = 512  # sgd only
    linear_weight_decay: float = 0.0  # sgd only
    batch_size: int = 1024  # feature-extraction batch


@dataclass
class RunConfig:
    """A whole run. ``method`` is the method's own Config plus its registry ``name``."""

    method_name: str = "simsiam"
    method: Any = None  # the method's Config dataclass instance
    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    eval: EvalConfig = field(default_factory=EvalConfig)
    preset: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """Plain nested dict, in the same shape a preset YAML is written in."""
        out: dict[str, Any] = {"preset": self.preset, "method": {"name": self.method_name}}
        out["method"].update(dataclasses.asdict(self.method))
        for sec in ("data", "model", "optim", "train", "eval"):
            out[sec] = dataclasses.asdict(getattr(self, sec))
        return _plain(out)


SECTIONS = {"data": DataConfig, "model": ModelConfig, "optim": OptimConfig, "train": TrainConfig,
            "eval": EvalConfig}


def _plain(obj: Any) -> Any:
    """Tuples to lists so YAML/JSON dumps stay plain."""
    if isinstance(obj, dict):
        return {k: _plain(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_plain(v) for v in obj]
    return obj


def dotted(d: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """A nested dict with dotted keys, the form overrides are written in: ``{"a": {"b": 1}}`` as
    ``{"a.b": 1}``."""
    out: dict[str, Any] = {}
    for k, v in d.items():
        if isinstance(v, dict):
            out.update(dotted(v, f"{prefix}{k}."))
        else:
            out[f"{prefix}{k}"] = v
    return out


def _suggest(key: str, options: list[str]) -> str:
    close = difflib.get_close_matches(key, options, n=1, cutoff=0.5)
    return f"; did you mean {close[0]!r}?" if close else f"; valid keys: {', '.join(sorted(options))}"


def coerce(value: Any, tp: Any, key: str) -> Any:
    """Check ``value`` against the annotation ``tp`` (int, float, bool, str, Optional, tuple, list, dict).

    Ints are accepted for floats; the string ``"none"``/``"null"`` for optional fields. Anything else
    that does not fit raises :class:`ConfigError` naming the key, the value and the expected type.
    """
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if tp is Any:
        return value
    if origin in (typing.Union, types.UnionType):
        if value is None or (isinstance(value, str) and value.lower() in ("none", "null")):
            if type(None) in args:
                return None
        errors = []
        for a in args:
            if a is type(None):
                continue
            try:
                return coerce(value, a, key)
            except ConfigError as e:
                errors.append(str(e))
        raise ConfigError(f"{key}={value!r}: expected {_tname(tp)}")
    if tp is bool:
        if isinstance(value, bool):
            return value
        raise ConfigError(f"{key}={value!r}: expected true or false")
    if tp is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        if isinstance(value, float) and value.is_integer():
            return int(value)
        raise ConfigError(f"{key}={value!r}: expected an integer")
    if tp is float:
        number = None
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            try:
                number = float(value)
            except OverflowError:  # an integer beyond any float
                number = math.inf
        elif isinstance(value, str):  # YAML 1.1 reads 5e-4 (no dot) as a string
            try:
                number = float(value)
            except ValueError:
                pass
        if number is None:
            raise ConfigError(f"{key}={value!r}: expected a number")
        if not math.isfinite(number):
            raise ConfigError(f"{key}={value!r}: must be a finite number")
        return number
    if tp is str:
        if isinstance(value, str):
            return value
        if isinstance(value, int) and not isinstance(value, bool):  # data.views=32 reads as a number
            return str(value)
        raise ConfigError(f"{key}={value!r}: expected a string")
    if origin in (tuple, list):
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"{key}={value!r}: expected a list like [a, b]")
        if origin is tuple and args and args[-1] is not Ellipsis:
            if len(value) != len(args):
                raise ConfigError(f"{key}={value!r}: expected {len(args)} values")
            return tuple(coerce(v, a, f"{key}[{i}]") for i, (v, a) in enumerate(zip(value, args)))
        inner = args[0] if args else Any
        seq = [coerce(v, inner, f"{key}[{i}]") for i, v in enumerate(value)]
        return tuple(seq) if origin is tuple else seq
    if origin is dict or tp is dict:
        if not isinstance(value, dict):
            raise ConfigError(f"{key}={value!r}: expected a mapping like {{name: value}}")
        bad_keys = [k for k in value if not isinstance(k, str)]
        if bad_keys:
            raise ConfigError(f"{key}: key {bad_keys[0]!r} is not a name")
        return dict(value)
    raise ConfigError(f"{key}: unsupported config type {tp!r}")


_TYPE_WORDS = {int: "an integer", float: "a number", bool: "true or false", str: "a string"}


def _tname(tp: Any) -> str:
    """``int | None`` → "an integer or null"."""
    args = [a for a in typing.get_args(tp) if a is not type(None)]
    if typing.get_origin(tp) in (typing.Union, types.UnionType):
        words = [_TYPE_WORDS.get(a, getattr(a, "__name__", str(a))) for a in args]
        return " or ".join(words + (["null"] if type(None) in typing.get_args(tp) else []))
    return _TYPE_WORDS.get(tp, getattr(tp, "__name__", None) or str(tp).replace("typing.", ""))


def build_dataclass(cls: type, values: dict[str, Any], prefix: str) -> Any:
    """Instantiate ``cls`` from ``values``, rejecting unknown keys and coercing types."""
    hints = typing.get_type_hints(cls)
    names = [f.name for f in fields(cls)]
    kwargs = {}
    for key, value in values.items():
        if key not in names:
            raise ConfigError(f"unknown key {prefix}{key}{_suggest(str(key), names)}")
        kwargs[key] = coerce(value, hints[key], prefix + key)
    def named(e: Exception) -> str:  # messages that already name their key keep it
        return str(e) if str(e).startswith(prefix) else f"{prefix}{e}"

    try:
        obj = cls(**kwargs)
    except (TypeError, ValueError) as e:
        raise ConfigError(named(e)) from e
    validate = getattr(obj, "validate", None)
    if callable(validate):
        try:
            validate()
        except (ValueError, TypeError) as e:
            raise ConfigError(named(e)) from e
    return obj


def parse_override(text: str) -> tuple[list[str], Any]:
    """``"a.b=3"`` → (["a", "b"], 3); values are parsed as YAML scalars/lists."""
    if "=" not in text:
        raise ConfigError(f"override {text!r} is not key=value (e.g. train.epochs=5)")
    key, raw = text.split("=", 1)
    try:
        value = yaml.safe_load(raw) if raw != "" else ""
    except yaml.YAMLError as e:
        raise ConfigError(f"override {text!r}: cannot parse value: {e}") from e
    return key.strip().split("."), value


def resolve(preset: str | None = None, overrides: list[str] | None = None,
            base: dict[str, Any] | None = None) -> RunConfig:
    """Build a validated :class:`RunConfig` from a preset, a base dict and dotted overrides."""
    raw: dict[str, Any] = {}
    if preset:
        merge(raw, load_preset(preset))
    if base:
        merge(raw, base)
    _drop_other_methods_keys(raw, overrides or [])
    for text in overrides or []:
        keys, value = parse_override(text)
        if not all(keys):
            raise ConfigError(f"override {text!r}: the key has an empty part; write section.key=value, "
                              "e.g. train.epochs=5")
        node = raw
        for k in keys[:-1]:
            node = node.setdefault(k, {})
            if not isinstance(node, dict):
                raise ConfigError(f"override {text!r}: {k!r} is not a section")
        node[keys[-1]] = value
    return from_dict(raw, preset=preset)


def _drop_other_methods_keys(raw: dict[str, Any], overrides: list[str]) -> None:
    """When an override switches ``method.name`` away from the preset's, the preset's method keys
    that the new method does not have are dropped (``stopgrad train method.name=supervised`` on a
    SimSiam preset); the user's own ``method.*`` overrides are always checked."""
    from stopgrad.methods import METHODS

    names = [parse_override(t)[1] for t in overrides if t.split("=", 1)[0].strip() == "method.name"]
    section = raw.get("method")
    if not names or not isinstance(section, dict) or names[-1] == section.get("name"):
        return
    if not isinstance(names[-1], str) or names[-1] not in METHODS:
        return  # from_dict reports the unknown name
    known = {f.name for f in fields(METHODS[names[-1]].Config)}
    raw["method"] = {k: v for k, v in section.items() if k == "name" or k in known}


def from_dict(raw: dict[str, Any], preset: str | None = None) -> RunConfig:
    """Validate a nested dict (a preset or a saved ``config.yaml``) into a :class:`RunConfig`."""
    from stopgrad.methods import METHODS, get_method  # late import: methods import config
    from stopgrad.validation import check_values

    if not isinstance(raw, dict):
        raise ConfigError(f"a config must be a mapping of sections (data:, train:, ...), got {raw!r}")
    raw = dict(raw)
    preset = raw.pop("preset", None) or preset
    if preset is not None and not isinstance(preset, str):
        raise ConfigError(f"preset={preset!r}: expected a preset name")
    allowed = list(SECTIONS) + ["method"]
    for key in raw:
        if key not in allowed:
            raise ConfigError(f"unknown section {key!r}{_suggest(str(key), allowed)}")
    method_raw = raw.get("method") or {}
    if not isinstance(method_raw, dict):
        raise ConfigError(f"section 'method' must be a mapping (method.name=..., method.<key>=...), got "
                          f"{method_raw!r}")
    method_raw = dict(method_raw)
    name = method_raw.pop("name", "simsiam")
    if not isinstance(name, str) or name not in METHODS:
        close = difflib.get_close_matches(str(name), list(METHODS), n=1)
        hint = f"; did you mean {close[0]!r}?" if close else ""
        raise ConfigError(f"method.name={name!r}: unknown method{hint} (known: {', '.join(sorted(METHODS))}; "
                          "`stopgrad methods`)")
    method_cls = get_method(name)
    cfg = RunConfig(method_name=name, preset=preset,
                    method=build_dataclass(method_cls.Config, method_raw, "method."))
    for sec, cls in SECTIONS.items():
        section = raw.get(sec) or {}
        if not isinstance(section, dict):
            raise ConfigError(f"section {sec!r} must be a mapping, got {section!r}")
        setattr(cfg, sec, build_dataclass(cls, section, f"{sec}."))
    check_values(cfg)
    return cfg


def dump_yaml(cfg: RunConfig, path: Path) -> None:
    """Write the resolved config; :func:`from_dict` reads it back unchanged."""
    with open(path, "w") as f:
        yaml.safe_dump(cfg.to_dict(), f, sort_keys=False)
        f.flush()
        os.fsync(f.fileno())


def load_yaml(path: Path) -> RunConfig:
    """Read a run folder's ``config.yaml`` (plain YAML only; a ``!!python`` tag is refused)."""
    raw = read_yaml(path)
    if not isinstance(raw, dict):
        raise ConfigError(f"{path}: expected a mapping of sections (data:, train:, ...); fix or restore the file")
    try:
        return from_dict(raw)
    except ConfigError as e:
        raise ConfigError(f"{path}: {e}") from e


def is_config(obj: Any) -> bool:
    return is_dataclass(obj) and not isinstance(obj, type)
