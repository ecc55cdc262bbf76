"""The real-data claim sets: --quick end to end on tiny archives in the official formats, the cost
stated up front, and the clear refusal when a dataset is missing."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from formats import cifar_pixels, make_cifar10, make_stl10, tar_gz, write_pickle
from stopgrad.reproduce import run_claim_set
from stopgrad.reproduce import jha_real, wang_real, wen_li_real


def make_cifar100(build: Path) -> None:
    folder = build / "cifar-100-python"
    folder.mkdir(parents=True)
    write_pickle(folder / "meta", {b"fine_label_names": [f"f{i}".encode() for i in range(100)],
                                   b"coarse_label_names": [f"c{i}".encode() for i in range(20)]})
    for seed, (split, n) in enumerate((("train", 6), ("test", 3))):
        _, rows = cifar_pixels(n, seed)
        write_pickle(folder / split, {b"filenames": [b"x"] * n, b"fine_labels": [(5 * j + seed) % 100 for j in range(n)],
                                      b"coarse_labels": [j % 20 for j in range(n)], b"data": rows})


def make_image_folder(root: Path) -> None:
    rng = np.random.default_rng(0)
    for split, n in (("train", 4), ("val", 2)):
        for wnid in ("n01440764", "n01443537"):
            (root / split / wnid).mkdir(parents=True)
            for i in range(n):
                Image.fromarray(rng.integers(0, 255, (40, 48, 3), dtype=np.uint8)).save(root / split / wnid / f"{i}.JPEG",
                                                                                    format="JPEG")


@pytest.fixture
def tiny_data(tmp_path, monkeypatch, isolated_data):
    """Tiny official-format archives (tar.gz) in $STOPGRAD_DATA, and an ImageNet-100-style folder."""
    build, data = tmp_path / "build", tmp_path / "data"
    make_cifar10(build)
    make_stl10(build)
    make_cifar100(build)
    for name, member in (("cifar-10-python", "cifar-10-batches-py"), ("stl10_binary", "stl10_binary"),
                         ("cifar-100-python", "cifar-100-python")):
        tar_gz(build / member, data / f"{name}.tar.gz")
    make_image_folder(tmp_path / "in100")
    monkeypatch.setenv("STOPGRAD_DATA", str(data))
    monkeypatch.setenv("STOPGRAD_IMAGENET100", str(tmp_path / "in100"))
    return data


# wen-li-2022-real (2 folders x 5 variants) runs by default; the larger grids (wang: 12 cells, jha: 28
# cells, a few seconds of process start-up each) run under -m slow (make test-all).
@pytest.mark.parametrize("module", [pytest.param(wang_real, marks=pytest.mark.slow), wen_li_real,
                                    pytest.param(jha_real, marks=pytest.mark.slow)],
                         ids=lambda m: m.__name__.rsplit(".", 1)[-1])
def test_quick_runs_end_to_end_on_official_formats(tmp_path, tiny_data, module):
    name = {wang_real: "wang-2021-real", wen_li_real: "wen-li-2022-real", jha_real: "jha-2023-real"}[module]
    lines: list[str] = []
    doc = run_claim_set(name, tmp_path / "out", quick=True, log=lines.append)
    folders = doc["settings"]["folders"]
    assert [c["id"] for c in doc["claims"]] == [f"{cid}@{f}" for f in folders for cid in _ids(module, doc, f)]
    assert all(c["verdict"].startswith("smoke test, not a verdict") for c in doc["claims"])
    for folder in folders:  # the plan is stated before anything trains, with its GPU hours
        assert any(line.startswith(f"{name}: {folder}: ") and "GPU hours (estimate" in line for line in lines)
        assert doc["settings"]["plan"][folder]["gpu_hours"] > 0
        for variant in module.variants(folder):
            summary = tmp_path / "out" / "runs" / folder / variant.name / "seed0" / "summary.json"
            assert json.loads(summary.read_text())["knn_top1"] >= 0, summary
    again: list[str] = []  # a second call resumes: every cell is already done
    run_claim_set(name, tmp_path / "out", quick=True, log=again.append)
    assert any("cells already done; running 0" in line for line in again)


def _ids(module, doc, folder):
    seen = [c["id"].split("@")[0] for c in doc["claims"] if c["id"].endswith(f"@{folder}")]
    assert set(seen) <= set(module.CLAIMS) and seen
    return seen


def test_missing_dataset_is_refused_before_any_run(tmp_path, isolated_data, capsys):
    from stopgrad.cli import main

    assert main(["reproduce", "wen-li-2022-real", "--quick", "--out", str(tmp_path / "o")]) != 0
    err = capsys.readouterr().err
    assert "cannot find" in err and "STOPGRAD_DATA" in err and "Traceback" not in err
    assert not (tmp_path / "o" / "runs").exists()


def test_imagenet_folder_must_be_named(tmp_path, isolated_data, monkeypatch, capsys):
    from stopgrad.cli import main

    monkeypatch.delenv("STOPGRAD_IMAGENET100", raising=False)
    assert main(["reproduce", "jha-2023-real", "--quick", "--out", str(tmp_path / "o")]) != 0
    assert "export STOPGRAD_IMAGENET100=" in capsys.readouterr().err
