"""Checkpoints: plain data only, sha256-verified, the previous one kept, malicious files refused unrun."""

import errno
import json
import os
import pickle
import warnings
from pathlib import Path

import pytest
import torch

from stopgrad import checkpoint
from stopgrad.checkpoint import CHECKPOINT, PENDING, PREVIOUS, SUMS
from stopgrad.config import resolve
from stopgrad.errors import CheckpointError, UnsafeFileError
from stopgrad.train import resume, train


def state(step: int) -> dict:
    return {"step": step, "model": {"w": torch.full((3,), float(step))}, "optimizer": {"state": {}, "param_groups": []},
            "config": {"train": {"seed": 0}}, "knn_history": [{"step": step, "knn_top1": 0.5}]}


class Payload:
    """Runs ``touch <marker>`` when unpickled by a loader that trusts the file."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def test_round_trip_is_plain_data_and_verified(tmp_path):
    checkpoint.save(tmp_path, state(3))
    assert torch.load(tmp_path / CHECKPOINT, weights_only=True)["step"] == 3  # loadable by anyone, safely
    loaded = checkpoint.load_latest(tmp_path)
    assert loaded.verified and loaded.path.name == CHECKPOINT and not loaded.skipped
    assert torch.equal(loaded.state["model"]["w"], torch.full((3,), 3.0))
    sums = json.loads((tmp_path / SUMS).read_text())["files"]
    assert sums[0]["sha256"] == checkpoint.sha256_of(tmp_path / CHECKPOINT) and sums[0]["step"] == 3


def test_previous_checkpoint_is_kept_and_used_when_latest_is_damaged(tmp_path):
    checkpoint.save(tmp_path, state(5))
    checkpoint.save(tmp_path, state(10))
    assert torch.load(tmp_path / PREVIOUS, weights_only=True)["step"] == 5
    latest = tmp_path / CHECKPOINT
    data = bytearray(latest.read_bytes())
    data[len(data) // 2] ^= 0xFF  # one flipped byte: torch might read it, the checksum does not pass it
    latest.write_bytes(bytes(data))
    loaded = checkpoint.load_latest(tmp_path)
    assert loaded.state["step"] == 5 and loaded.path.name == PREVIOUS
    assert "checkpoint.pt does not match its recorded sha256" in loaded.skipped[0]


def test_truncated_latest_without_sums_falls_back_to_previous(tmp_path):
    checkpoint.save(tmp_path, state(5))
    checkpoint.save(tmp_path, state(10))
    (tmp_path / SUMS).unlink()
    latest = tmp_path / CHECKPOINT
    latest.write_bytes(latest.read_bytes()[:100])
    loaded = checkpoint.load_latest(tmp_path)
    assert loaded.state["step"] == 5 and not loaded.verified
    assert "damaged or truncated" in loaded.skipped[0]


def test_a_complete_pending_file_is_recovered_and_an_unfinished_one_ignored(tmp_path):
    checkpoint.save(tmp_path, state(5))
    checkpoint.save(tmp_path, state(10))
    # a crash after the old latest became the previous, before the new file was renamed into place
    os.replace(tmp_path / CHECKPOINT, tmp_path / PENDING)
    assert checkpoint.load_latest(tmp_path).state["step"] == 10
    # a temp file whose sha256 was never recorded (killed while writing) is not a candidate
    (tmp_path / PENDING).write_bytes(b"half a checkpoint")
    assert checkpoint.load_latest(tmp_path).state["step"] == 5


def test_damaged_latest_is_not_rotated_over_the_good_previous(tmp_path):
    checkpoint.save(tmp_path, state(5))
    checkpoint.save(tmp_path, state(10))
    (tmp_path / CHECKPOINT).write_bytes(b"garbage")
    checkpoint.save(tmp_path, state(15))
    assert torch.load(tmp_path / PREVIOUS, weights_only=True)["step"] == 5
    assert checkpoint.load_latest(tmp_path).state["step"] == 15


@pytest.mark.parametrize("fmt", ["zip", "pickle-2", "pickle-4"])
def test_malicious_checkpoint_is_refused_and_nothing_runs(tmp_path, fmt):
    marker = tmp_path / "PWNED"
    evil = {**state(1), "extra": Payload(marker)}
    path = tmp_path / CHECKPOINT
    if fmt == "zip":
        torch.save(evil, path)
    else:
        path.write_bytes(pickle.dumps(evil, protocol=int(fmt[-1])))
    with pytest.raises(UnsafeFileError, match="refused, nothing in it was run"):
        checkpoint.load_latest(tmp_path)
    assert not marker.exists()
    # a malicious file is never skipped in favour of a good older one: the user must hear of it
    other = tmp_path / "other"
    other.mkdir()
    checkpoint.save(other, state(1))
    checkpoint.save(other, state(2))
    os.replace(path, other / CHECKPOINT)
    (other / SUMS).unlink()
    with pytest.raises(UnsafeFileError):
        checkpoint.load_latest(other)
    assert not marker.exists()


@pytest.mark.parametrize("bad", [
    [1, 2, 3],
    {"model": {}, "optimizer": {}, "config": {}},
    {**state(1), "step": -1},
    {**state(1), "model": {"w": [1.0]}},
    {**state(1), "optimizer": {"state": []}},
    {**state(1), "config": "x"},
])
def test_files_that_are_not_stopgrad_checkpoints_are_named(tmp_path, bad):
    torch.save(bad, tmp_path / CHECKPOINT)
    with pytest.raises(CheckpointError, match="not a stopgrad checkpoint|damaged"):
        checkpoint.load_latest(tmp_path)


def test_empty_folder_has_no_checkpoint(tmp_path):
    with pytest.raises(CheckpointError, match="no checkpoint in"):
        checkpoint.load_latest(tmp_path)


def test_full_disk_during_save_keeps_the_checkpoints_already_there(tmp_path, monkeypatch):
    checkpoint.save(tmp_path, state(5))
    checkpoint.save(tmp_path, state(10))
    before = {p.name: p.read_bytes() for p in tmp_path.iterdir()}

    def full_disk(name):
        if name == "checkpoint.write":  # half the bytes are written, then write() fails
            raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(checkpoint.failpoints, "hit", full_disk)
    with pytest.raises(OSError) as info:
        checkpoint.save(tmp_path, state(15))
    assert info.value.errno == errno.ENOSPC and info.value.filename == str(tmp_path / PENDING)
    assert {p.name: p.read_bytes() for p in tmp_path.iterdir()} == before  # no temp file, nothing changed
    assert checkpoint.load_latest(tmp_path).state["step"] == 10


def test_resume_falls_back_to_previous_checkpoint_and_says_so(tiny):
    over = tiny(**{"method.heads": "small", "train.steps": 6, "train.ckpt_every": 2, "train.name": "r"})
    summary = train(resolve(None, over))
    d = Path(summary["run_dir"])
    assert torch.load(d / PREVIOUS, weights_only=True)["step"] == 4
    (d / CHECKPOINT).write_bytes(b"\0" * 64)
    (d / "summary.json").unlink()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        again = resume(d)
    assert any("using" in str(w.message) and "checkpoint.prev.pt (step 4)" in str(w.message) for w in caught)
    assert again["steps"] == 6 and again["final_loss"] == summary["final_loss"]
    assert again["knn_top1"] == summary["knn_top1"]
