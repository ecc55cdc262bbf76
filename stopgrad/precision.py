"""Device and mixed-precision choices: bf16 autocast on CUDA and on CPUs with native bf16 (AVX-512
BF16 or AMX on x86, the BF16 extension on Arm), fp32 on other CPUs, fp16 with a scaler on CUDA."""

from __future__ import annotations

import contextlib
import functools
import platform
from pathlib import Path

import torch

from stopgrad.errors import DeviceError


def resolve_device(name: str) -> torch.device:
    """``auto`` → ``cuda`` when available, else ``cpu``; an unavailable CUDA request is an error."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        dev = torch.device(name)
    except (RuntimeError, ValueError) as e:
        raise DeviceError(f"train.device={name!r}: not a device; use auto, cpu, cuda or cuda:N") from e
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise DeviceError(f"train.device={name!r}: CUDA is not available on this machine; use 'cpu' or 'auto'")
    if dev.type == "cuda" and dev.index is not None and dev.index >= torch.cuda.device_count():
        raise DeviceError(f"train.device={name!r}: this machine has {torch.cuda.device_count()} CUDA device(s); "
                          f"use cuda:0 .. cuda:{torch.cuda.device_count() - 1}")
    if dev.type == "mps" and not (hasattr(torch.backends, "mps") and torch.backends.mps.is_available()):
        raise DeviceError(f"train.device={name!r}: MPS is not available on this machine; use 'cpu' or 'auto'")
    if dev.type not in ("cpu", "cuda", "mps"):
        raise DeviceError(f"train.device={name!r}: stopgrad runs on cpu, cuda or mps")
    return dev


NATIVE_BF16_FLAGS = frozenset({"avx512_bf16", "amx_bf16"})  # x86 flags in /proc/cpuinfo
ARM_BF16_FLAG = "bf16"  # aarch64 "Features" in /proc/cpuinfo


def cpu_flags(cpuinfo: Path = Path("/proc/cpuinfo")) -> frozenset[str]:
    """The CPU feature flags the kernel reports (empty where there is no /proc/cpuinfo)."""
    try:
        text = cpuinfo.read_text(errors="replace")
    except OSError:
        return frozenset()
    for line in text.splitlines():
        key, _, value = line.partition(":")
        if key.strip() in ("flags", "Features"):
            return frozenset(value.split())
    return frozenset()


@functools.lru_cache(maxsize=1)
def cpu_has_native_bf16() -> bool:
    """Whether this CPU computes bf16 matmuls natively. Without it oneDNN emulates bf16 and
    autocast is far slower than fp32: measured 32 against 404 images/s for the
    ``fashion-mnist/simsiam`` step on a 2-core AVX2-only AMD EPYC (benchmarks/bench_step.py),
    where a CPU with AVX-512 BF16 ran bf16 about 3.5x faster than fp32."""
    flags = cpu_flags()
    if platform.machine().lower() in ("aarch64", "arm64"):
        return ARM_BF16_FLAG in flags
    return bool(flags & NATIVE_BF16_FLAGS)


def resolve_precision(name: str, device: torch.device) -> str:
    """``auto`` → bf16 on CUDA and on CPUs with native bf16 (:func:`cpu_has_native_bf16`), fp32 on
    other CPUs; fp16 only on CUDA."""
    if name == "auto":
        if device.type == "cpu" and not cpu_has_native_bf16():
            return "fp32"
        return "bf16"
    if name == "fp16" and device.type != "cuda":
        raise DeviceError("train.precision='fp16' needs CUDA; use 'bf16' or 'fp32' on a CPU")
    return name


def autocast(device: torch.device, precision: str) -> contextlib.AbstractContextManager:
    """The autocast context for ``precision`` (a no-op for fp32)."""
    if precision == "fp32":
        return contextlib.nullcontext()
    dtype = torch.bfloat16 if precision == "bf16" else torch.float16
    return torch.autocast(device.type, dtype=dtype)
