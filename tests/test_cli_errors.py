"""The fault suite, part 2: every bad input a user can hand over ends as one ``stopgrad: error:`` line.

Corrupt and truncated dataset files of every format, unsafe archives, malicious checkpoints and
config files (whose payload would create a marker file), bad config values, read-only folders
and a full disk: each gives exit status 2 and one line naming the file or key, never a traceback,
never a run folder left behind, never a marker file.
"""

from __future__ import annotations

import dataclasses
import errno
import gzip
import json
import os
import pickle
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from formats import (
    cifar_pixels,
    evil_tar,
    idx_bytes,
    make_cifar10,
    make_stl10,
    rand_u8,
    tar_gz,
    use_archive,
    write_idx_split,
    write_pickle,
)
from stopgrad import cli
from stopgrad.config import resolve
from stopgrad.data.sources import SOURCES

TINY = ["data.batch_size=16", "model.backbone=convnet", "model.width=0.25", "method.heads=small", "train.steps=2",
        "train.progress=false", "eval.knn_every=0", "eval.knn_k=5", "train.num_threads=1"]


@pytest.fixture(autouse=True)
def _isolated(isolated_data):
    return isolated_data


def run_cli(capsys, *argv: str) -> tuple[int, str, str]:
    code = cli.main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def one_error_line(code: int, err: str, *expected: str) -> str:
    """Exit 2 and a single ``stopgrad: error:`` line (warnings aside) containing each expected text."""
    lines = [ln for ln in err.splitlines() if ln.strip() and not ln.startswith("stopgrad: warning:")]
    assert code == 2, err
    assert "Traceback" not in err and len(lines) == 1, err
    assert lines[0].startswith("stopgrad: error: ") and "internal error" not in lines[0], lines[0]
    for text in expected:
        assert text in lines[0], (text, lines[0])
    print(f"ERROR-LINE {lines[0]}")  # shown with -s: the suite's record of what each bad input gives
    return lines[0]


def train_on(capsys, tmp_path: Path, dataset: str, root: Path, *extra: str) -> tuple[int, str]:
    out = tmp_path / "runs"
    code, _, err = run_cli(capsys, "train", f"data.dataset={dataset}", f"data.root={root}", "data.download=false",
                           *TINY, f"train.out_dir={out}", *extra)
    assert not out.exists() or not any(out.iterdir()), "a failed start left a run folder behind"
    return code, err


# ------------------------------------------------------------------------------ corrupt datasets
def mnist_root(tmp_path: Path, n: int = 40) -> tuple[Path, Path, Path]:
    root = tmp_path / "data"
    folder = root / "mnist"
    write_idx_split(folder, "test", rand_u8(1, 8, 28, 28), np.zeros(8, np.uint8))
    images, labels = write_idx_split(folder, "train", rand_u8(0, n, 28, 28), np.arange(n, dtype=np.uint8) % 10)
    return root, images, labels


def test_truncated_gzip(capsys, tmp_path):
    root, images, _ = mnist_root(tmp_path)
    images.write_bytes(images.read_bytes()[:-60])
    one_error_line(*train_on(capsys, tmp_path, "mnist", root), str(images), "damaged gzip stream",
                   "data.download=true")


def test_bad_idx_magic(capsys, tmp_path):
    root, _, labels = mnist_root(tmp_path)
    labels.write_bytes(gzip.compress(idx_bytes(np.zeros(40, np.uint8), magic=b"\x12\x34\x08\x01")))
    one_error_line(*train_on(capsys, tmp_path, "mnist", root), str(labels), "bad IDX magic number 0x12340801")


def test_idx_header_says_more_than_the_file_holds(capsys, tmp_path):
    root, images, _ = mnist_root(tmp_path)
    images.write_bytes(gzip.compress(gzip.decompress(images.read_bytes())[:-784]))
    one_error_line(*train_on(capsys, tmp_path, "mnist", root), str(images), "truncated: header dims")


def test_idx_label_count_mismatch(capsys, tmp_path):
    root, _, labels = mnist_root(tmp_path)
    labels.write_bytes(gzip.compress(idx_bytes(np.zeros(39, np.uint8))))
    one_error_line(*train_on(capsys, tmp_path, "mnist", root), "39 labels but")


def cifar_root(tmp_path: Path, monkeypatch, drop: str | None = None, truncate: bool = False) -> Path:
    """An archive in the official layout under data/cifar10/, registered as the official one."""
    build = tmp_path / "build"
    make_cifar10(build)
    members = build / "cifar-10-batches-py"
    if drop:
        (members / drop).unlink()
    archive = tar_gz(members, tmp_path / "data" / "cifar10" / "cifar-10-python.tar.gz")
    if truncate:  # truncated before its md5 is taken: the checksum passes, the tar reader must fail
        archive.write_bytes(archive.read_bytes()[: archive.stat().st_size // 2])
    use_archive(monkeypatch, "cifar10", archive, members)
    return tmp_path / "data"


CIFAR = ["data.views=32", "data.batch_size=4", "eval.knn_k=2"]


def test_cifar_archive_missing_a_batch(capsys, tmp_path, monkeypatch):
    root = cifar_root(tmp_path, monkeypatch, drop="data_batch_3")
    one_error_line(*train_on(capsys, tmp_path, "cifar10", root, *CIFAR), "has no member cifar-10-batches-py/data_batch_3")


def test_cifar_truncated_tar(capsys, tmp_path, monkeypatch):
    root = cifar_root(tmp_path, monkeypatch, truncate=True)
    one_error_line(*train_on(capsys, tmp_path, "cifar10", root, *CIFAR), "cannot be read as a tar archive")


def test_cifar_archive_with_foreign_md5_and_the_verify_switch(capsys, tmp_path, monkeypatch):
    root = cifar_root(tmp_path, monkeypatch)
    (remote,) = SOURCES["cifar10"].files.values()
    files = {remote.filename: dataclasses.replace(remote, md5="0" * 32)}  # as if the user re-packed it
    monkeypatch.setitem(SOURCES, "cifar10", dataclasses.replace(SOURCES["cifar10"], files=files))
    line = one_error_line(*train_on(capsys, tmp_path, "cifar10", root, *CIFAR), "md5 is", "0" * 32,
                          "data.verify=false")
    assert "cifar-10-python.tar.gz" in line
    code, out, err = run_cli(capsys, "train", "data.dataset=cifar10", f"data.root={root}", "data.download=false",
                             "data.verify=false", *TINY, *CIFAR, f"train.out_dir={tmp_path / 'ok'}")
    assert code == 0, err
    warning = [ln for ln in err.splitlines() if ln.startswith("stopgrad: warning:")]
    assert warning and "0" * 32 in warning[0] and "differs from the official" in warning[0]


def test_cifar_archive_with_unsafe_member(capsys, tmp_path, monkeypatch):
    archive = evil_tar(tmp_path / "data" / "cifar10" / "cifar-10-python.tar.gz", "traversal")
    use_archive(monkeypatch, "cifar10", archive)
    one_error_line(*train_on(capsys, tmp_path, "cifar10", tmp_path / "data", *CIFAR), "'../evil.txt'",
                   "refusing to extract")
    assert not (tmp_path / "data" / "evil.txt").exists()


class Payload:
    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def test_cifar_batch_that_would_run_code(capsys, tmp_path, monkeypatch):
    """Even with data.verify=false (md5 not enforced), a pickle naming os.system is refused unrun."""
    root = tmp_path / "data"
    make_cifar10(root)
    folder = root / "cifar-10-batches-py"
    use_archive(monkeypatch, "cifar10", tmp_path / "none.tar.gz", folder)
    marker = tmp_path / "PWNED"
    images, rows = cifar_pixels(2, 0)
    write_pickle(folder / "test_batch", {b"data": rows, b"labels": [0, 1], b"x": Payload(marker)})
    one_error_line(*train_on(capsys, tmp_path, "cifar10", root, *CIFAR, "data.verify=false"),
                   "test_batch", "posix.system", "nothing in it was run")
    assert not marker.exists()


def test_stl10_wrong_size(capsys, tmp_path):
    make_stl10(tmp_path / "data")
    bad = tmp_path / "data" / "stl10_binary" / "test_X.bin"
    bad.write_bytes(bad.read_bytes()[:-7])
    code, err = train_on(capsys, tmp_path, "stl10", tmp_path / "data", "data.views=96", "data.batch_size=2",
                         "eval.knn_k=2")
    one_error_line(code, err, "test_X.bin: size")


def image_root(tmp_path: Path) -> Path:
    root = tmp_path / "images"
    for split in ("train", "val"):
        for cls in ("a", "b"):
            (root / split / cls).mkdir(parents=True)
            for i in range(10):
                Image.new("RGB", (12, 12), (10 * i, 0, 0)).save(root / split / cls / f"{i}.png")
    return root


IMAGES = ["data.views=32", "data.image_size=32", "data.batch_size=8", "eval.knn_k=3"]


def test_undecodable_image(capsys, tmp_path):
    root = image_root(tmp_path)
    (root / "train" / "b" / "broken.jpg").write_bytes(b"\xff\xd8 not a jpeg")
    one_error_line(*train_on(capsys, tmp_path, "image-folder", root, *IMAGES), "broken.jpg",
                   "cannot be decoded", "remove it")


def test_images_outside_class_folders(capsys, tmp_path):
    root = image_root(tmp_path)
    Image.new("RGB", (12, 12)).save(root / "val" / "stray.png")
    one_error_line(*train_on(capsys, tmp_path, "image-folder", root, *IMAGES), "outside any class folder")


def test_missing_dataset_names_every_place_without_a_traceback(capsys, tmp_path):
    code, err = train_on(capsys, tmp_path, "mnist", tmp_path / "nowhere")
    assert code == 2 and "Traceback" not in err
    first = err.splitlines()[0]
    assert first.startswith("stopgrad: error: MNIST: cannot find") and "data.download=false" in first


# ------------------------------------------------------------------------- malicious run folders
@pytest.fixture
def finished_run(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("finished")
    assert cli.main(["train", "data.dataset=synthetic", *TINY, f"train.out_dir={out}", "train.name=run"]) == 0
    return out / "run"


def evil_checkpoint(run: Path, marker: Path, fmt: str) -> None:
    state = torch.load(run / "checkpoint.pt", weights_only=True)
    state["extra"] = Payload(marker)
    if fmt == "zip":
        torch.save(state, run / "checkpoint.pt")
    else:
        (run / "checkpoint.pt").write_bytes(pickle.dumps(state, protocol=2))
    for name in ("checkpoint.sums.json", "checkpoint.prev.pt"):
        (run / name).unlink(missing_ok=True)  # as a stranger hands it over: one file, no sums


@pytest.mark.parametrize("fmt", ["zip", "pickle"])
@pytest.mark.parametrize("command", [["resume"], ["eval", "knn"], ["eval", "linear", "--epochs", "1"]])
def test_malicious_checkpoint_is_refused(capsys, finished_run, tmp_path, fmt, command):
    marker = tmp_path / "PWNED"
    evil_checkpoint(finished_run, marker, fmt)
    (finished_run / "summary.json").unlink()
    code, _, err = run_cli(capsys, *command, str(finished_run))
    one_error_line(code, err, "checkpoint.pt", "refused, nothing in it was run")
    assert not marker.exists()


@pytest.mark.parametrize("command", [["resume"], ["eval", "knn"]])
def test_malicious_config_yaml_is_refused(capsys, finished_run, tmp_path, command):
    marker = tmp_path / "PWNED"
    with open(finished_run / "config.yaml", "a") as f:
        f.write(f'payload: !!python/object/apply:os.system ["touch {marker}"]\n')
    code, _, err = run_cli(capsys, *command, str(finished_run))
    one_error_line(code, err, "config.yaml line", "plain YAML only", "ran nothing")
    assert not marker.exists()


def test_config_yaml_that_is_not_yaml(capsys, finished_run):
    (finished_run / "config.yaml").write_text("train: [unclosed\n")
    code, _, err = run_cli(capsys, "resume", str(finished_run))
    one_error_line(code, err, "config.yaml", "not valid YAML")


def test_resume_of_a_folder_that_does_not_exist(capsys, tmp_path):
    code, _, err = run_cli(capsys, "resume", str(tmp_path / "nope"))
    one_error_line(code, err, "does not exist")
    (tmp_path / "empty").mkdir()
    code, _, err = run_cli(capsys, "resume", str(tmp_path / "empty"))
    one_error_line(code, err, "has no config.yaml")


def test_resume_of_a_finished_run_says_so(capsys, finished_run):
    code, out, err = run_cli(capsys, "resume", str(finished_run))
    assert code == 0 and "had already finished (2 steps)" in out


# ------------------------------------------------------------------------------- config values
@pytest.mark.parametrize("override, expected", [
    ("optim.lr=nan", "optim.lr='nan': must be a finite number"),
    ("optim.lr=.inf", "optim.lr=inf: must be a finite number"),
    ("train.epochs=inf", "train.epochs='inf': must be a finite number"),
    ("train.epochs=nan", "train.epochs='nan': must be a finite number"),
    ("train.steps=-5", "train.steps=-5: must be >= 1"),
    ("train.steps=0", "train.steps=0: must be >= 1; or train.steps=null"),
    ("optim.momentum=2.5", "optim.momentum=2.5: must lie in [0, 1)"),
    ("train.device=tpu", "train.device='tpu': expected auto, cpu, cuda, cuda:N or mps"),
    ("train.device=cuda:7", "train.device='cuda:7'"),
    ("data.views=32", "data.views='32' does not fit synthetic's images (1, 28, 28)"),
    ("data.dataset=imagenet", "data.dataset='imagenet'"),
    ("model.backbone=resnet19", "model.backbone='resnet19': did you mean 'resnet9'? expected one of resnet18"),
    ("eval.knn_k=0", "eval.knn_k=0: must be >= 1"),
    ("data.label_set=coarse", "only cifar100 has coarse labels"),
    ("method=3", "section 'method' must be a mapping"),
    ("train.name=../x", "train.name='../x'"),
])
def test_bad_config_values_are_one_line(capsys, tmp_path, override, expected):
    if override == "train.device=cuda:7" and torch.cuda.device_count() > 7:
        pytest.skip("this machine has 8 GPUs")
    code, _, err = run_cli(capsys, "train", "data.dataset=synthetic", *TINY, f"train.out_dir={tmp_path / 'runs'}",
                           override)
    one_error_line(code, err, expected)
    assert not (tmp_path / "runs").exists() or not any((tmp_path / "runs").iterdir())


def test_numeric_preset_names_are_read_as_names():
    assert resolve(None, ["data.dataset=cifar10", "data.views=32"]).data.views == "32"
    assert resolve(None, ["data.dataset=stl10", "data.views=96"]).data.views == "96"


# ----------------------------------------------------------------------- read-only and full disks
def test_read_only_out_dir(capsys, tmp_path, monkeypatch):
    out = tmp_path / "runs"
    real_mkdir = Path.mkdir

    def read_only(self, *args, **kwargs):
        if str(self).startswith(str(out)):
            raise OSError(errno.EROFS, "Read-only file system", str(self))
        return real_mkdir(self, *args, **kwargs)

    monkeypatch.setattr(Path, "mkdir", read_only)
    code, _, err = run_cli(capsys, "train", "data.dataset=synthetic", *TINY, f"train.out_dir={out}")
    one_error_line(code, err, f"cannot write {out}", "read-only file system", "train.out_dir")


def test_full_disk_during_a_checkpoint(capsys, tmp_path, monkeypatch):
    """ENOSPC half-way through the third checkpoint's bytes: one line, and the two already written stay whole."""
    import stopgrad.checkpoint as ckpt

    calls = {"n": 0}

    def fills_up(name: str) -> None:
        if name == "checkpoint.write":
            calls["n"] += 1
            if calls["n"] == 3:
                raise OSError(errno.ENOSPC, "No space left on device")  # as write() raises it: no file name

    monkeypatch.setattr(ckpt.failpoints, "hit", fills_up)
    out = tmp_path / "runs"
    code, _, err = run_cli(capsys, "train", "data.dataset=synthetic", *TINY, "train.steps=8", "train.ckpt_every=2",
                           f"train.out_dir={out}", "train.name=r")
    one_error_line(code, err, "disk full while writing", "checkpoint.pt.tmp")
    monkeypatch.undo()
    loaded = ckpt.load_latest(out / "r")
    assert loaded.verified and loaded.state["step"] == 4 and not loaded.skipped
    assert not (out / "r" / "checkpoint.pt.tmp").exists()
    code, out_text, err = run_cli(capsys, "resume", str(out / "r"))
    assert code == 0 and json.loads((out / "r" / "summary.json").read_text())["steps"] == 8


def test_eval_on_a_read_only_run_folder_fails_before_computing(capsys, finished_run, tmp_path, monkeypatch):
    import stopgrad.train as train_mod

    import stopgrad.commands as commands

    monkeypatch.setattr(commands, "writable", lambda folder: Path(folder) != finished_run)
    monkeypatch.setattr(train_mod, "load_run", lambda *a, **k: pytest.fail("computed before checking the folder"))
    code, _, err = run_cli(capsys, "eval", "knn", str(finished_run))
    one_error_line(code, err, "summary.json", "--out")
    monkeypatch.undo()
    target = tmp_path / "elsewhere" / "knn.json"
    target.parent.mkdir()
    code, out, err = run_cli(capsys, "eval", "knn", str(finished_run), "--out", str(target))
    assert code == 0, err
    assert json.loads(target.read_text())["knn_top1"] == pytest.approx(float(out.split("=")[1].split()[0]), abs=1e-4)


# Real file systems: a tmpfs too small for a third checkpoint, and one remounted read-only. These need
# mount(8) (root with CAP_SYS_ADMIN); the injected versions above run everywhere.
def mount_tmpfs(path: Path, size: int) -> bool:
    path.mkdir(parents=True, exist_ok=True)
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)], capture_output=True)
    return done.returncode == 0


@pytest.fixture
def small_tmpfs(tmp_path):
    mounts = []

    def make(size: int) -> Path:
        path = tmp_path / f"tmpfs{len(mounts)}"
        if not mount_tmpfs(path, size):
            pytest.skip("mount -t tmpfs is not permitted here (the injected ENOSPC/EROFS tests cover the logic)")
        mounts.append(path)
        return path

    yield make
    for path in mounts:
        subprocess.run(["umount", "-l", str(path)], capture_output=True)


def test_real_full_disk_and_read_only_mount(capsys, tmp_path, small_tmpfs):
    probe = tmp_path / "probe"
    args = ["train", "data.dataset=synthetic", *TINY, "train.steps=8", "train.ckpt_every=2"]
    assert cli.main([*args, f"train.out_dir={probe}", "train.name=p"]) == 0
    size = (probe / "p" / "checkpoint.pt").stat().st_size
    disk = small_tmpfs(int(2.6 * size) + 256 * 1024)  # room for two checkpoints, not three
    capsys.readouterr()
    code, _, err = run_cli(capsys, *args, f"train.out_dir={disk}", "train.name=r")
    one_error_line(code, err, "disk full while writing")
    from stopgrad.checkpoint import load_latest

    loaded = load_latest(disk / "r")
    assert loaded.verified and loaded.state["step"] in (2, 4) and not loaded.skipped
    shutil.copytree(disk / "r", tmp_path / "moved")
    assert cli.main(["resume", str(tmp_path / "moved")]) == 0  # moved to a disk with room, it finishes
    ref = json.loads((probe / "p" / "summary.json").read_text())
    assert json.loads((tmp_path / "moved" / "summary.json").read_text())["knn_top1"] == ref["knn_top1"]
    # the same folder on a read-only mount: eval says so at once, and writes elsewhere with --out
    subprocess.run(["mount", "-o", "remount,ro", str(disk)], check=True)
    capsys.readouterr()
    code, _, err = run_cli(capsys, "eval", "knn", str(disk / "r"))
    one_error_line(code, err, "summary.json", "--out")
    code, _, err = run_cli(capsys, "train", "data.dataset=synthetic", *TINY, f"train.out_dir={disk}")
    one_error_line(code, err, f"cannot write {disk}: read-only file system")


# ------------------------------------------------------------------- Ctrl-C, --debug, internal errors
def test_ctrl_c_writes_a_checkpoint_and_says_where(capsys, tmp_path, monkeypatch):
    import stopgrad.train as train_mod

    real = train_mod.train_step

    def interrupt_at_3(run, step, images):
        if step == 3:
            raise KeyboardInterrupt
        return real(run, step, images)

    monkeypatch.setattr(train_mod, "train_step", interrupt_at_3)
    code, _, err = run_cli(capsys, "train", "data.dataset=synthetic", *TINY, "train.steps=6",
                           f"train.out_dir={tmp_path}", "train.name=r")
    assert code == 130 and "Traceback" not in err
    assert f"interrupted at step 3; a checkpoint of that step was written to {tmp_path / 'r'}" in err
    assert f"stopgrad resume {tmp_path / 'r'}" in err
    assert torch.load(tmp_path / "r" / "checkpoint.pt", weights_only=True)["step"] == 3


def test_debug_shows_the_traceback_and_a_bug_is_one_line_without_it(capsys, tmp_path, monkeypatch):
    import stopgrad.train as train_mod

    def broken(*args, **kwargs):
        raise TypeError("something inside stopgrad went wrong")

    monkeypatch.setattr(train_mod, "fit", broken)
    args = ["train", "data.dataset=synthetic", *TINY, f"train.out_dir={tmp_path}"]
    code, _, err = run_cli(capsys, *args)
    assert code == 1 and "Traceback" not in err and len(err.strip().splitlines()) == 1
    assert "internal error (TypeError: something inside stopgrad went wrong)" in err and "--debug" in err
    code, _, err = run_cli(capsys, "--debug", *args)
    assert code == 1 and "Traceback" in err and "def broken" not in err and "raise TypeError" in err
    monkeypatch.setenv("STOPGRAD_DEBUG", "1")
    code, _, err = run_cli(capsys, "train", "data.dataset=synthetic", "optim.lr=nan")
    assert code == 2 and "Traceback" in err and err.strip().endswith("must be a finite number")
