"""Training throughput against the usual pipeline and against this machine's matmul limit.

In one run, on whatever device is present (CUDA if available, else this CPU):

1. the bf16 and fp32 matmul rate (TFLOP/s) of large square matmuls: the roofline;
2. for each configuration, a ``stopgrad`` training step (views made on the device, the precision
   ``train.precision=auto`` picks: bf16 autocast where the device has native bf16, else fp32;
   channels_last, resident data) and its FLOPs counted with ``torch.utils.flop_counter`` per view,
   so views/s, achieved TFLOP/s and the fraction of the roofline (the faster of the two matmul
   rates);
3. a baseline written here, the common recipe: the same model in fp32 with contiguous tensors,
   views made per image (PIL and NumPy, as torchvision's transforms do) in 2 DataLoader worker
   processes;
4. ``--profile``: the top operators of one stopgrad step (``torch.profiler``) with their share of
   the step and, for convolutions and matmuls, the FLOP rate each reaches.

Configurations: SimSiam, BYOL and DirectCopy on the CIFAR-stem ResNet-18 at 32x32 RGB (batch 256),
and the Fashion-MNIST presets (ConvNet), with two options of the recipe screen (24x24 views, and
the ConvNet's pool-first order). Images are synthetic (the step's cost does not depend on
them). Prints a table and writes JSON (``--out``).

    .venv/bin/python benchmarks/throughput.py --out runs/throughput.json
    .venv/bin/python benchmarks/throughput.py --only resnet18-simsiam --profile --steps 3
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import tempfile
import time

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import numpy as np  # noqa: E402
import torch  # noqa: E402
from PIL import Image, ImageEnhance  # noqa: E402
from torch.utils.flop_counter import FlopCounterMode  # noqa: E402

from stopgrad.config import resolve  # noqa: E402
from stopgrad.sweep import PLAIN_FMNIST_BACKBONE  # noqa: E402
from stopgrad.train import setup, train_step  # noqa: E402

RESNET = ["data.dataset=synthetic-rgb", "data.views=32", "data.batch_size=256", "model.backbone=resnet18",
          "model.stem=cifar", "model.options={}", "train.diag_every=0"]
# the presets' 28x28 views and plain ConvNet (no feature_bn) before 2026-12-07
FMNIST_28 = ["train.diag_every=0", "data.views=28-gray-strong", PLAIN_FMNIST_BACKBONE]

CONFIGS = {
    "resnet18-simsiam": ("fashion-mnist/simsiam", [*RESNET, "method.heads=simsiam-cifar"]),
    "resnet18-byol": ("fashion-mnist/byol", [*RESNET, "method.heads=byol"]),
    "resnet18-directcopy": ("fashion-mnist/directcopy", [*RESNET, "method.heads=directpred"]),
    "fmnist-simsiam": ("fashion-mnist/simsiam", ["train.diag_every=0"]),
    "fmnist-byol": ("fashion-mnist/byol", ["train.diag_every=0"]),
    "fmnist-directpred": ("fashion-mnist/directpred", ["train.diag_every=0"]),
    "fmnist-directcopy": ("fashion-mnist/directcopy", ["train.diag_every=0"]),
    # options measured in the recipe screen (README "Round 3"), from the 28x28 views the presets had until
    # 2026-12-07 (the fmnist-* rows of the README's tables before that date are fmnist-simsiam-28px's step)
    "fmnist-simsiam-28px": ("fashion-mnist/simsiam", FMNIST_28),
    "fmnist-simsiam-24px": ("fashion-mnist/simsiam", [*FMNIST_28, "data.view_overrides={size: 24}"]),
    "fmnist-simsiam-24px-pool-first": ("fashion-mnist/simsiam", [*FMNIST_28, "data.view_overrides={size: 24}",
                                                                  "model.options={pool: 3, pool_first: true}"]),
}


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def matmul_tflops(device: torch.device, dtype: torch.dtype, n: int = 2048, reps: int = 10) -> float:
    a = torch.randn(n, n, device=device, dtype=dtype)
    b = torch.randn(n, n, device=device, dtype=dtype)
    t0 = time.perf_counter()
    a @ b
    sync(device)
    if time.perf_counter() - t0 > 1.0:  # emulated (e.g. bf16 without AVX-512 BF16): a smaller, shorter probe
        n, reps = 1024, 3
        a, b = a[:n, :n].contiguous(), b[:n, :n].contiguous()
    a @ b
    sync(device)
    times = []
    for _ in range(reps):
        t0 = time.perf_counter()
        a @ b
        sync(device)
        times.append(time.perf_counter() - t0)
    return 2 * n**3 / statistics.median(times) / 1e12


def build(name: str, tmp: str, extra: list[str]):
    preset, overrides = CONFIGS[name]
    cfg = resolve(preset, [*overrides, *extra, f"train.out_dir={tmp}", "train.progress=false", "eval.knn_every=0"])
    return setup(cfg)


# profiler event -> the flop counter's operator whose FLOPs it performs (convolutions and matmuls)
FLOP_OPS = {"aten::mkldnn_convolution": "convolution", "aten::convolution_backward": "convolution_backward",
            "aten::mm": "mm", "aten::addmm": "addmm", "aten::bmm": "bmm"}


def time_steps(run, steps: int) -> tuple[float, float, dict[str, int]]:
    """(median seconds per step, FLOPs of one step, FLOPs by operator) of stopgrad's own step on
    resident data."""
    batch = run.train_set.images[: run.cfg.data.batch_size].to(run.device)
    for i in range(2):
        train_step(run, i, batch)
    with FlopCounterMode(display=False) as counter:
        train_step(run, 2, batch)
    flops = counter.get_total_flops()
    by_op = {str(op).split(".")[1]: n for op, n in counter.get_flop_counts().get("Global", {}).items()}  # aten.mm
    times = []
    for i in range(steps):
        sync(run.device)
        t0 = time.perf_counter()
        train_step(run, 3 + i, batch)
        sync(run.device)
        times.append(time.perf_counter() - t0)
    return statistics.median(times), flops, by_op


# ------------------------------------------------------------------------- the common recipe
class PerImageViews(torch.utils.data.Dataset):
    """Two views per image, one image at a time in a worker (RandomResizedCrop(0.2-1), flip, colour
    jitter 0.4/0.4/0.4 with p 0.8, grayscale p 0.2, to tensor, normalise): the usual pipeline."""

    def __init__(self, images: np.ndarray, size: int, mean: tuple[float, ...], std: tuple[float, ...]) -> None:
        self.images, self.size = images, size
        self.mean = np.array(mean, dtype=np.float32).reshape(-1, 1, 1)
        self.std = np.array(std, dtype=np.float32).reshape(-1, 1, 1)

    def __len__(self) -> int:
        return len(self.images)

    def view(self, img: Image.Image, rng: np.random.Generator) -> torch.Tensor:
        w, h = img.size
        area = rng.uniform(0.2, 1.0) * w * h
        ratio = np.exp(rng.uniform(np.log(3 / 4), np.log(4 / 3)))
        cw, ch = min(w, int(round(np.sqrt(area * ratio)))), min(h, int(round(np.sqrt(area / ratio))))
        left, top = rng.integers(0, w - cw + 1), rng.integers(0, h - ch + 1)
        img = img.resize((self.size, self.size), Image.BILINEAR, box=(left, top, left + cw, top + ch))
        if rng.random() < 0.5:
            img = img.transpose(Image.FLIP_LEFT_RIGHT)
        if rng.random() < 0.8:
            for enhance in (ImageEnhance.Brightness, ImageEnhance.Contrast, ImageEnhance.Color):
                img = enhance(img).enhance(rng.uniform(0.6, 1.4))
        if rng.random() < 0.2 and img.mode == "RGB":
            img = img.convert("L").convert("RGB")
        x = np.asarray(img, dtype=np.float32) / 255.0
        x = x[None] if x.ndim == 2 else x.transpose(2, 0, 1)
        return torch.from_numpy((x - self.mean) / self.std)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, torch.Tensor]:
        rng = np.random.default_rng(i)
        arr = self.images[i]
        img = Image.fromarray(arr[0] if arr.shape[0] == 1 else arr.transpose(1, 2, 0))
        return self.view(img, rng), self.view(img, rng)


def common_recipe(run, steps: int, workers: int = 2) -> float:
    """Views/s of the same model in fp32, contiguous, fed by per-image views from DataLoader workers."""
    method = run.method.to(memory_format=torch.contiguous_format).float()
    images = run.train_set.images.numpy()
    cfg = run.views.configs[0]
    data = PerImageViews(images, cfg.size, cfg.mean, cfg.std)
    loader = torch.utils.data.DataLoader(data, batch_size=run.cfg.data.batch_size, shuffle=True, num_workers=workers,
                                         drop_last=True, persistent_workers=True)
    opt = torch.optim.SGD(method.parameters(), lr=0.01, momentum=0.9)
    it = iter(loader)
    times = []
    for i in range(steps + 2):
        t0 = time.perf_counter()
        try:
            v1, v2 = next(it)
        except StopIteration:
            it = iter(loader)
            v1, v2 = next(it)
        out = method([v1.to(run.device), v2.to(run.device)], i)
        opt.zero_grad(set_to_none=True)
        out.loss.backward()
        opt.step()
        sync(run.device)
        if i >= 2:
            times.append(time.perf_counter() - t0)
    return 2 * run.cfg.data.batch_size / statistics.median(times)


def profile_step(run, flops_by_op: dict[str, int], top: int = 12) -> list[dict]:
    """The top operators of one step by self time; for convolutions and matmuls, the FLOP rate from
    the flop counter's FLOPs of that operator over its self time."""
    from torch.profiler import ProfilerActivity, profile

    batch = run.train_set.images[: run.cfg.data.batch_size].to(run.device)
    train_step(run, 100, batch)
    acts = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if run.device.type == "cuda" else [])
    with profile(activities=acts, with_flops=True) as prof:
        train_step(run, 101, batch)
    events = prof.key_averages()
    total = sum(e.self_cpu_time_total for e in events) or 1
    rows = []
    for e in sorted(events, key=lambda e: e.self_cpu_time_total, reverse=True)[:top]:
        op_flops = flops_by_op.get(FLOP_OPS.get(e.key, ""), 0)
        rate = op_flops / (e.self_cpu_time_total * 1e-6) / 1e12 if op_flops and e.self_cpu_time_total else None
        rows.append({"op": e.key, "share": e.self_cpu_time_total / total, "ms": e.self_cpu_time_total / 1e3,
                     "tflops": rate})
    return rows


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--only", nargs="*", default=None, help=f"configurations, of {list(CONFIGS)}")
    p.add_argument("--steps", type=int, default=5)
    p.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's)")
    p.add_argument("--no-baseline", action="store_true", help="skip the common-recipe baseline")
    p.add_argument("--profile", action="store_true", help="profile one stopgrad step per configuration")
    p.add_argument("--out", default=None, help="write the results as JSON here")
    p.add_argument("--precision", default="auto", help="stopgrad's step: auto | bf16 | fp32 (default auto)")
    args = p.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    peak = {"bf16": matmul_tflops(device, torch.bfloat16), "fp32": matmul_tflops(device, torch.float32)}
    print(f"device {device}, {torch.get_num_threads()} threads, torch {torch.__version__}; matmul rate: "
          f"bf16 {peak['bf16']:.3g} TFLOP/s, fp32 {peak['fp32']:.3g} TFLOP/s; load {os.getloadavg()[0]:.2f}")
    roof = max(peak.values())
    print(f"{'configuration':<20} {'views/s':>8} {'GFLOP/view':>10} {'TFLOP/s':>8} {'% of roof':>9} "
          f"{'common recipe':>14} {'speed-up':>8}")
    results = {"device": str(device), "threads": torch.get_num_threads(), "matmul_tflops": peak,
               "roofline_tflops": roof, "configs": {}}
    for name in args.only or CONFIGS:
        with tempfile.TemporaryDirectory() as tmp:
            run = build(name, tmp, [f"train.precision={args.precision}"])
            seconds, flops, by_op = time_steps(run, args.steps)
            views = run.cfg.data.batch_size * (run.cfg.data.n_views + run.cfg.data.local_views)
            rate = flops / seconds / 1e12
            row = {"views_per_s": views / seconds, "step_s": seconds, "gflop_per_view": flops / views / 1e9,
                   "tflops": rate, "roofline_fraction": rate / roof, "precision": run.precision}
            if not args.no_baseline:
                row["common_recipe_views_per_s"] = common_recipe(build(name, tmp, ["train.precision=fp32"]), args.steps)
            if args.profile:
                row["profile"] = profile_step(run, by_op)
        base = row.get("common_recipe_views_per_s")
        print(f"{name:<20} {row['views_per_s']:>8.1f} {row['gflop_per_view']:>10.3f} {rate:>8.3f} "
              f"{100 * row['roofline_fraction']:>8.1f}% {base or float('nan'):>14.1f} "
              f"{row['views_per_s'] / base if base else float('nan'):>7.2f}x")
        for op in row.get("profile", []):
            extra = f", {op['tflops']:.2f} TFLOP/s" if op["tflops"] else ""
            print(f"    {op['share']:6.1%} {op['ms']:8.1f} ms  {op['op']}{extra}")
        results["configs"][name] = row
    if args.out:
        with open(args.out, "w") as f:
            json.dump(results, f, indent=1)
        print(args.out)


if __name__ == "__main__":
    main()
