"""`stopgrad export`: the backbone as safetensors + JSON, readable by the safetensors package, faithful."""

import json
import struct
from pathlib import Path

import pytest
import torch

from stopgrad import cli
from stopgrad.backbones import build_backbone
from stopgrad.config import resolve
from stopgrad.errors import StopgradError
from stopgrad.export import read_safetensors, write_safetensors
from stopgrad.train import train


def test_export_reloads_to_the_same_features(tiny, capsys):
    summary = train(resolve(None, tiny(**{"method.heads": "small", "train.steps": 4})))
    run = Path(summary["run_dir"])
    assert cli.main(["export", str(run)]) == 0
    assert "equal the run's bit for bit" in capsys.readouterr().out
    meta = json.loads((run / "backbone.json").read_text())
    assert meta["backbone"] == "convnet" and meta["feat_dim"] == 64 and meta["check"]["features_equal"]
    assert meta["preprocess"]["size"] == 28 and len(meta["preprocess"]["mean"]) == 1
    # the README's recipe: plain PyTorch + the official safetensors reader
    safetensors_torch = pytest.importorskip("safetensors.torch")
    weights = safetensors_torch.load_file(str(run / "backbone.safetensors"))
    net, dim = build_backbone(meta["backbone"], in_channels=meta["in_channels"], width=meta["width"],
                              stem=meta["stem"], **meta["options"])
    net.load_state_dict(weights)
    ours, _ = read_safetensors(run / "backbone.safetensors")
    assert set(ours) == set(weights) and all(torch.equal(ours[k], weights[k]) for k in ours)
    assert dim == meta["feat_dim"]


def test_safetensors_round_trip_and_malformed_files(tmp_path):
    tensors = {"a": torch.randn(3, 4), "b": torch.arange(5, dtype=torch.int64), "c": torch.zeros(0),
               "d": torch.tensor(True), "e": torch.randn(2, 2).to(torch.bfloat16)}
    path = write_safetensors(tensors, tmp_path / "x.safetensors", {"note": "hi"})
    back, meta = read_safetensors(path)
    assert meta == {"note": "hi"} and all(torch.equal(back[k], tensors[k]) for k in tensors)
    for data, why in [(b"\x01", "shorter"), (struct.pack("<Q", 10**9) + b"{}", "header of"),
                      (struct.pack("<Q", 2) + b"{x", "not JSON"),
                      (struct.pack("<Q", 64) + json.dumps({"a": {"dtype": "F32", "shape": [4],
                                                                 "data_offsets": [0, 99]}}).encode().ljust(64),
                       "outside")]:
        bad = tmp_path / "bad.safetensors"
        bad.write_bytes(data)
        with pytest.raises(StopgradError, match=why):
            read_safetensors(bad)
