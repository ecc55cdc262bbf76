"""``stopgrad export RUN --out backbone.safetensors``: a trained backbone for use outside stopgrad.

Writes the backbone's weights in the safetensors format (a JSON header and raw little-endian tensor
bytes: nothing in it can run code, and the ``safetensors`` package reads it) and, beside it,
``<name>.json`` with the architecture (backbone, width, stem, options, input channels, feature
size), the preprocessing of the evaluation transform (size, crop, mean, std) and where it came from
(run folder, step, git commit). The export is then loaded back into a freshly built backbone and
its features of the first images of the training split are checked to equal the run's bit for bit.

The format (https://github.com/huggingface/safetensors): 8 bytes little-endian header length N,
N bytes of JSON ``{name: {"dtype": "F32", "shape": [...], "data_offsets": [start, end]}, ...}``
(plus an optional ``"__metadata__"`` of strings), then the tensors' bytes.
"""

from __future__ import annotations

import json
import struct
from pathlib import Path
from typing import Any

import torch

from stopgrad.errors import StopgradError

DTYPES = {torch.float32: "F32", torch.float16: "F16", torch.bfloat16: "BF16", torch.float64: "F64",
          torch.int64: "I64", torch.int32: "I32", torch.int16: "I16", torch.int8: "I8", torch.uint8: "U8",
          torch.bool: "BOOL"}
NAMES = {v: k for k, v in DTYPES.items()}
MAX_HEADER = 100 << 20


def write_safetensors(tensors: dict[str, torch.Tensor], path: Path, metadata: dict[str, str] | None = None) -> Path:
    """Write ``tensors`` (contiguous CPU copies are made) as a safetensors file, atomically."""
    from stopgrad.atomic import removing_on_error

    header: dict[str, Any] = {"__metadata__": dict(metadata or {})} if metadata else {}
    blobs, offset = [], 0
    for name in sorted(tensors):
        t = tensors[name].detach().to("cpu").contiguous()
        if t.dtype not in DTYPES:
            raise StopgradError(f"cannot export tensor {name} of dtype {t.dtype}")
        data = t.reshape(-1).view(torch.uint8).numpy().tobytes() if t.numel() else b""  # 0-d: as 1 value
        header[name] = {"dtype": DTYPES[t.dtype], "shape": list(t.shape), "data_offsets": [offset, offset + len(data)]}
        blobs.append(data)
        offset += len(data)
    head = json.dumps(header, separators=(",", ":")).encode()
    head += b" " * (-len(head) % 8)  # pad so the data starts 8-byte aligned
    path = Path(path)
    tmp = path.with_name(path.name + ".tmp")
    with removing_on_error(tmp, path):
        with open(tmp, "wb") as f:
            f.write(struct.pack("<Q", len(head)))
            f.write(head)
            for blob in blobs:
                f.write(blob)
        tmp.replace(path)
    return path


def read_safetensors(path: Path) -> tuple[dict[str, torch.Tensor], dict[str, str]]:
    """Read a safetensors file (``(tensors, metadata)``); a malformed one is a :class:`StopgradError`."""
    raw = Path(path).read_bytes()

    def bad(why: str) -> StopgradError:
        return StopgradError(f"{path} is not a valid safetensors file ({why})")

    if len(raw) < 8:
        raise bad("shorter than its 8-byte header length")
    (n,) = struct.unpack("<Q", raw[:8])
    if n > min(MAX_HEADER, len(raw) - 8):
        raise bad(f"header of {n} bytes in a file of {len(raw)}")
    try:
        header = json.loads(raw[8:8 + n])
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise bad(f"header is not JSON: {e}") from e
    data = raw[8 + n:]
    meta = header.pop("__metadata__", {}) or {}
    out = {}
    for name, info in header.items():
        try:
            dtype, shape, (start, end) = NAMES[info["dtype"]], info["shape"], info["data_offsets"]
        except (KeyError, TypeError, ValueError) as e:
            raise bad(f"entry {name!r} is malformed") from e
        if not 0 <= start <= end <= len(data):
            raise bad(f"entry {name!r} points outside the data")
        buf = bytearray(data[start:end])
        t = torch.frombuffer(buf, dtype=dtype) if buf else torch.empty(0, dtype=dtype)
        if t.numel() != (int(torch.tensor(shape).prod()) if shape else 1):
            raise bad(f"entry {name!r} has {t.numel()} values for shape {shape}")
        out[name] = t.reshape(shape)
    return out, meta


def export_backbone(run_dir: Path, out: Path) -> dict[str, Any]:
    """Export the backbone of ``run_dir`` to ``out`` (+ ``out.json``), check it, return the JSON."""
    from stopgrad.backbones import build_backbone
    from stopgrad.checkpoint import CHECKPOINT
    from stopgrad.rundir import git_revision
    from stopgrad.train import features, load_run

    run = load_run(run_dir)
    state = {k: v for k, v in run.method.backbone.state_dict().items()}
    view = run.views.configs[0]
    m = run.cfg.model
    meta = {"format": "stopgrad-backbone/1", "backbone": m.backbone, "width": m.width, "stem": m.stem,
            "zero_init_residual": m.zero_init_residual, "options": dict(m.options),
            "in_channels": int(run.train_set.images.shape[1]), "feat_dim": int(run.method.feat_dim),
            "preprocess": {"size": view.size, "crop_fraction": 1.0, "mean": list(view.mean), "std": list(view.std),
                           "input": "uint8 (B, C, H, W) scaled to [0, 1], center-cropped and resized to size, "
                                    "then (x - mean) / std"},
            "source": {"run_dir": str(Path(run_dir).resolve()), "method": run.cfg.method_name, "step": run.step,
                       "checkpoint": CHECKPOINT, "git": git_revision().get("commit")}}
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    write_safetensors(state, out, {"stopgrad": json.dumps(meta)})
    tensors, _ = read_safetensors(out)
    rebuilt, _ = build_backbone(m.backbone, in_channels=meta["in_channels"], width=m.width, stem=m.stem,
                                zero_init_residual=m.zero_init_residual, **m.options)
    rebuilt.load_state_dict(tensors)
    rebuilt.to(run.device)
    if run.cfg.train.channels_last:
        rebuilt = rebuilt.to(memory_format=torch.channels_last)
    images = run.train_set.images[:256]
    mine = features(run, images)
    original = run.method.backbone
    run.method.backbone = rebuilt
    try:
        theirs = features(run, images)
    finally:
        run.method.backbone = original
    if not torch.equal(mine, theirs):
        raise StopgradError(f"the exported backbone's features differ from the run's (max "
                            f"{(mine - theirs).abs().max().item():.3g}); the export is not faithful")
    meta["check"] = {"images": len(images), "features_equal": True}
    Path(str(out.with_suffix("")) + ".json").write_text(json.dumps(meta, indent=2) + "\n")
    return meta
