"""Device and mixed-precision choices: bf16 autocast on CPU (AMX) and CUDA, fp16 with a scaler on CUDA."""

from __future__ import annotations

import contextlib

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


def resolve_precision(name: str, device: torch.device) -> str:
    """``auto`` → bf16 (CPU autocast with AMX, or CUDA); fp16 only on CUDA."""
    if name == "auto":
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
