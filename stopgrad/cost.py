"""What a preset costs before it runs: FLOPs per step, and GPU hours per epoch and per schedule.

The FLOPs are counted, not guessed: the preset's views are made from one blank image of the
dataset's shape, and the backbone's forward pass on views of those sizes runs on the ``meta``
device under ``torch.utils.flop_counter`` (no memory, no compute). A training step costs about 3
forward passes per view (forward, then backward at twice the forward), plus one more forward per
global view where a target network (BYOL's EMA, DINO's teacher) encodes them; the heads are left
out (under 1% of a ResNet step). ``benchmarks/throughput.py`` measured 3.37 GFLOP per view for the
full SimSiam step on the CIFAR ResNet-18, against 3.34 from this count.

GPU time is then an **estimate**: FLOPs over an assumed sustained rate (:data:`REFERENCE_GPU`).
It is a lower bound of sorts: data loading and small kernels make real runs slower. It is
replaced by a measurement where one exists (:data:`MEASURED`).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch.utils.flop_counter import FlopCounterMode

from stopgrad.augment import build_views
from stopgrad.backbones import build_backbone
from stopgrad.config import RunConfig
from stopgrad.data.registry import DATASETS

# Pre-training images per epoch (the split build.load_splits trains on).
TRAIN_IMAGES: dict[str, int] = {
    "fashion-mnist": 60_000, "mnist": 60_000, "cifar10": 50_000, "cifar100": 50_000,
    "stl10": 105_000,  # train (5,000) + unlabeled (100,000)
    "image-folder": 126_689,  # ImageNet-100 (the CMC class list); other folders: their own count
}


@dataclass(frozen=True)
class GpuRate:
    """An assumed sustained training rate: ``peak_tflops * utilisation``."""

    name: str
    peak_tflops: float
    utilisation: float

    @property
    def tflops(self) -> float:
        return self.peak_tflops * self.utilisation


# NVIDIA A100 dense bf16 peak 312 TFLOP/s (A100 datasheet). 20% of it sustained is an assumption,
# about what mixed-precision ResNet-50 training reaches on one A100 (~2,600 images/s x 24.6 GFLOP).
REFERENCE_GPU = GpuRate("A100, bf16, an assumed 20% of its 312 TFLOP/s peak", 312.0, 0.20)

# Measured seconds per epoch on a GPU, by preset; none yet (no GPU was available to this project).
MEASURED: dict[str, float] = {}


@dataclass(frozen=True)
class Cost:
    """The cost of one preset's schedule."""

    gflop_per_step: float
    steps_per_epoch: int
    epochs: float
    gpu_hours_per_epoch: float
    source: str  # "estimate (...)" or "measured"

    @property
    def gpu_hours(self) -> float:
        return self.gpu_hours_per_epoch * self.epochs


def view_shapes(cfg: RunConfig) -> list[tuple[int, ...]]:
    """``(C, H, W)`` of each view the preset makes, from one blank image of the dataset's shape."""
    d = cfg.data
    shape = DATASETS[d.dataset].image_shape or (3, d.image_size or 64, d.image_size or 64)
    views = build_views(d.views, n_views=d.n_views, local_views=d.local_views,
                        local_overrides=d.local_overrides, **d.view_overrides)
    made = views(torch.zeros(1, *shape, dtype=torch.uint8), generator=torch.Generator().manual_seed(0))
    return [tuple(v.shape[1:]) for v in made]


def forward_flops(cfg: RunConfig, shape: tuple[int, ...]) -> float:
    """FLOPs of the backbone's forward pass on one image of ``shape``, counted on the meta device."""
    m = cfg.model
    with torch.device("meta"):
        backbone, _ = build_backbone(m.backbone, in_channels=shape[0], width=m.width, stem=m.stem,
                                     zero_init_residual=m.zero_init_residual, **m.options)
        x = torch.empty(1, *shape)
    with FlopCounterMode(display=False) as counter:
        backbone(x)
    return float(counter.get_total_flops())


def has_target(cfg: RunConfig) -> bool:
    """Whether a second (EMA) network encodes the global views each step."""
    return cfg.method_name == "dino" or bool(getattr(cfg.method, "uses_target", False))


def preset_cost(cfg: RunConfig, preset: str | None = None, gpu: GpuRate = REFERENCE_GPU) -> Cost:
    """FLOPs per step and GPU hours of ``cfg``'s schedule (measured where :data:`MEASURED` has it)."""
    shapes = view_shapes(cfg)
    per_view = {s: forward_flops(cfg, s) for s in set(shapes)}
    step = sum(3 * per_view[s] for s in shapes)
    if has_target(cfg):
        step += sum(per_view[s] for s in shapes[: cfg.data.n_views])
    step *= cfg.data.batch_size
    images = TRAIN_IMAGES.get(cfg.data.dataset, 0)
    steps = max(1, images // cfg.data.batch_size)
    if preset in MEASURED:
        return Cost(step / 1e9, steps, cfg.train.epochs, MEASURED[preset] / 3600, "measured")
    return Cost(step / 1e9, steps, cfg.train.epochs, step * steps / (gpu.tflops * 1e12) / 3600,
                f"estimate ({gpu.name})")
