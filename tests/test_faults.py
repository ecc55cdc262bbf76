"""The fault suite, part 1: SIGKILL at named points of a run, then `stopgrad resume`.

Each case runs ``stopgrad train`` in a subprocess with ``STOPGRAD_FAILPOINT=<point>:<n>`` (the
process kills itself with SIGKILL the n-th time it reaches the point: no handler, no flush runs),
resumes it, and compares the result with an uninterrupted run of the same config: the final
weights bit for bit, every metric row (timing columns aside), the spectra and the summary's
numbers, with no row duplicated. A kill before the run folder exists leaves no folder (and no
litter); running the same command again gives the same result.

The default test run covers one point of each kind; ``pytest -m slow tests/test_faults.py`` runs
all of them (24 points).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parent.parent
ARGS = ["data.dataset=synthetic", "data.batch_size=16", "model.backbone=convnet", "model.width=0.25",
        "method.name=byol", "method.heads=small", "train.steps=24", "train.ckpt_every=5", "train.log_every=1",
        "train.diag_every=4", "train.spectrum_every=8", "eval.knn_every=0.25", "eval.knn_k=5",
        "eval.linear=true", "eval.linear_epochs=2", "train.num_threads=1", "train.progress=false"]
TIMING = {"images_per_s", "wall_s", "diag_s", "diag_fraction", "run_dir"}

# (point, n): 24 kill points across the loop, the checkpoint write, the logs, the evaluations, the summary
ALL_POINTS = [
    ("rundir.staged", 1),
    ("step.forward", 1), ("step.forward", 3), ("step.forward", 7), ("step.forward", 21),
    ("step.optimizer", 12), ("step.optimizer", 24),
    ("metrics.append", 1), ("metrics.append", 9), ("metrics.append", 20), ("metrics.append", 33),
    ("checkpoint.write", 1), ("checkpoint.write", 3), ("checkpoint.write", 5),
    ("checkpoint.recorded", 1), ("checkpoint.recorded", 2), ("checkpoint.recorded", 5),
    ("checkpoint.rotated", 2), ("checkpoint.rotated", 5),
    ("knn.online", 1), ("knn.online", 2),
    ("final.knn", 1), ("final.linear", 1), ("summary.write", 1),
]
QUICK_POINTS = [("rundir.staged", 1), ("step.forward", 7), ("metrics.append", 9), ("checkpoint.write", 3),
                ("checkpoint.rotated", 2), ("knn.online", 2), ("final.linear", 1), ("summary.write", 1)]


def cli(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    full_env = {**os.environ, "PYTHONPATH": str(ROOT)}
    full_env.pop("STOPGRAD_FAILPOINT", None)
    full_env.update(env or {})
    return subprocess.run([sys.executable, "-m", "stopgrad", *args], env=full_env, capture_output=True,
                          text=True, timeout=600)


def train_args(out: Path, name: str) -> list[str]:
    return ["train", *ARGS, f"train.out_dir={out}", f"train.name={name}"]


def rows(path: Path) -> list[dict]:
    if not path.exists():
        return []
    return [{k: v for k, v in json.loads(line).items() if k not in TIMING}
            for line in path.read_text().splitlines() if line.strip()]


def outcome(run_dir: Path) -> dict:
    """What must not depend on where the run was killed."""
    summary = json.loads((run_dir / "summary.json").read_text())
    model = torch.load(run_dir / "checkpoint.pt", weights_only=True)["model"]
    return {"metrics": rows(run_dir / "metrics.jsonl"), "spectra": rows(run_dir / "spectra.jsonl"),
            "summary": {k: summary[k] for k in ("steps", "final_loss", "knn_top1", "linear_top1")},
            "model": model}


@pytest.fixture(scope="module")
def reference(tmp_path_factory) -> dict:
    out = tmp_path_factory.mktemp("reference")
    done = cli(*train_args(out, "ref"))
    assert done.returncode == 0, done.stderr
    return outcome(out / "ref")


def kill_and_resume(out: Path, point: str, n: int) -> tuple[Path, str]:
    """Run until the point kills the process, resume (or rerun), return the run folder and a log."""
    name = f"{point.replace('.', '-')}-{n}"
    killed = cli(*train_args(out, name), env={"STOPGRAD_FAILPOINT": f"{point}:{n}"})
    log = [f"{point}:{n}: train exited {killed.returncode}"]
    assert killed.returncode == -signal.SIGKILL, f"{point}:{n} was never reached:\n{killed.stderr}"
    run_dir = out / name
    if point == "rundir.staged":  # killed before the folder existed: nothing to resume, nothing left
        assert not run_dir.exists()
        again = cli(*train_args(out, name))
        assert again.returncode == 0, again.stderr
        assert not [p for p in out.iterdir() if p.name.startswith(".")], "staging folder left behind"
        log.append("rerun of train: ok")
        return run_dir, "\n".join(log)
    resumed = cli("resume", str(run_dir))
    assert resumed.returncode == 0, f"{point}:{n}: resume failed:\n{resumed.stderr}"
    assert "Traceback" not in resumed.stderr
    log.append(f"resume: ok; {resumed.stderr.strip()}")
    return run_dir, "\n".join(log)


def check_same(reference: dict, run_dir: Path, label: str) -> None:
    got = outcome(run_dir)
    steps = [r["step"] for r in got["metrics"] if "loss" in r]
    assert steps == sorted(set(steps)), f"{label}: duplicated or reordered metric rows: {steps}"
    assert got["metrics"] == reference["metrics"], f"{label}: metric rows differ from the uninterrupted run"
    assert got["spectra"] == reference["spectra"], f"{label}: spectra differ"
    assert got["summary"] == reference["summary"], f"{label}: {got['summary']} != {reference['summary']}"
    for key, value in reference["model"].items():
        assert torch.equal(got["model"][key], value), f"{label}: weight {key} differs"


def run_points(reference: dict, out: Path, points: list[tuple[str, int]]) -> None:
    with ThreadPoolExecutor(2) as pool:  # two single-thread runs side by side, one per core
        results = list(pool.map(lambda p: kill_and_resume(out, *p), points))
    for (point, n), (run_dir, log) in zip(points, results):
        check_same(reference, run_dir, f"{point}:{n}")
        print(log)


def test_sigkill_at_one_point_of_each_kind_then_resume(reference, tmp_path):
    run_points(reference, tmp_path, QUICK_POINTS)


@pytest.mark.slow
def test_sigkill_at_24_points_then_resume(reference, tmp_path):
    assert len(ALL_POINTS) >= 20
    run_points(reference, tmp_path, ALL_POINTS)


def test_kill_during_a_resume_is_resumable_too(reference, tmp_path):
    name = "twice"
    first = cli(*train_args(tmp_path, name), env={"STOPGRAD_FAILPOINT": "step.forward:8"})
    assert first.returncode == -signal.SIGKILL
    second = cli("resume", str(tmp_path / name), env={"STOPGRAD_FAILPOINT": "checkpoint.rotated:2"})
    assert second.returncode == -signal.SIGKILL
    third = cli("resume", str(tmp_path / name))
    assert third.returncode == 0, third.stderr
    check_same(reference, tmp_path / name, "killed twice")
