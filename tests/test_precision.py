"""precision=auto: bf16 only where the CPU computes it natively (emulated bf16 is ~12x slower)."""

from __future__ import annotations

import pytest
import torch

from stopgrad import precision
from stopgrad.errors import DeviceError


def write_cpuinfo(tmp_path, line: str):
    path = tmp_path / "cpuinfo"
    path.write_text(f"processor\t: 0\nvendor_id\t: AuthenticAMD\n{line}\n\nprocessor\t: 1\n{line}\n")
    return path


def test_cpu_flags_reads_the_flags_line(tmp_path):
    path = write_cpuinfo(tmp_path, "flags\t\t: fpu sse2 avx2 avx512f avx512_bf16")
    assert precision.cpu_flags(path) == frozenset({"fpu", "sse2", "avx2", "avx512f", "avx512_bf16"})
    assert precision.cpu_flags(tmp_path / "missing") == frozenset()


@pytest.mark.parametrize("flags, machine, native", [
    ("fpu avx2 fma", "x86_64", False),
    ("fpu avx2 avx512f avx512bw", "x86_64", False),
    ("fpu avx2 avx512f avx512_bf16", "x86_64", True),
    ("fpu avx2 amx_tile amx_bf16", "x86_64", True),
    ("fp asimd sve", "aarch64", False),
    ("fp asimd sve bf16", "aarch64", True),
])
def test_native_bf16_detection(monkeypatch, flags, machine, native):
    monkeypatch.setattr(precision, "cpu_flags", lambda: frozenset(flags.split()))
    monkeypatch.setattr(precision.platform, "machine", lambda: machine)
    precision.cpu_has_native_bf16.cache_clear()
    try:
        assert precision.cpu_has_native_bf16() is native
    finally:
        precision.cpu_has_native_bf16.cache_clear()


@pytest.mark.parametrize("native, expected", [(True, "bf16"), (False, "fp32")])
def test_auto_follows_the_cpu(monkeypatch, native, expected):
    monkeypatch.setattr(precision, "cpu_has_native_bf16", lambda: native)
    assert precision.resolve_precision("auto", torch.device("cpu")) == expected
    assert precision.resolve_precision("auto", torch.device("cuda")) == "bf16"
    assert precision.resolve_precision("bf16", torch.device("cpu")) == "bf16"  # an explicit choice stands
    assert precision.resolve_precision("fp32", torch.device("cpu")) == "fp32"


def test_fp16_needs_cuda():
    with pytest.raises(DeviceError, match="fp16"):
        precision.resolve_precision("fp16", torch.device("cpu"))
