"""A run's state on disk: what a checkpoint holds, writing it, and loading it back into a run.

The loop (:mod:`stopgrad.train`) calls :func:`save` every ``train.ckpt_every`` steps, at the
end and on Ctrl-C; ``resume`` and the evaluation commands call :func:`load_state` and
:func:`restore`. The file format and its safety are :mod:`stopgrad.checkpoint`'s.
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch

from stopgrad import distributed as dist
from stopgrad import rundir, time_budget
from stopgrad.errors import CheckpointError

if TYPE_CHECKING:
    from stopgrad.build import Run


class ResumeWarning(UserWarning):
    """A resume or evaluation used an older checkpoint than the latest, or started over."""


def checkpoint_state(run: Run) -> dict[str, Any]:
    """Tensors and plain data only (read back with ``weights_only=True``), plus the byte length of
    each log so a resume cuts off exactly the rows written after this point."""
    return {"step": run.step, "model": run.method.state_dict(), "optimizer": run.optimizer.state_dict(),
            "scaler": run.scaler.state_dict() if run.scaler else None, "config": run.cfg.to_dict(),
            "elapsed_s": run.elapsed_s, "knn_online_s": run.knn_online_s, "last_loss": run.last_loss, "knn_history": run.knn_history,
            "total_steps": run.total_steps, "budget": dict(run.budget), "logs": rundir.log_sizes(run.run_dir),
            "monitor": {"cost_s": run.monitor.cost_s, "alarmed": run.monitor.alarmed, "strikes": run.monitor.strikes,
                        "ce_has_learned": run.monitor.ce_has_learned, "ce_below": run.monitor.ce_below}}


def save(run: Run) -> None:
    if dist.is_main():
        rundir.save_checkpoint(run.run_dir, checkpoint_state(run))


def restore(run: Run, state: dict[str, Any], path: Path | str = "checkpoint") -> None:
    """Load a checkpoint into a freshly built run; a checkpoint of another model is a CheckpointError."""
    if run.cfg.train.minutes is not None:  # the length was chosen by the run, not by its config
        try:
            time_budget.restore(run, state)
        except (TypeError, ValueError, KeyError) as e:
            raise CheckpointError(f"{path}: its time budget is not what stopgrad writes ({e}); a damaged or "
                                  "forged checkpoint") from e
    elif state.get("total_steps") != run.total_steps:
        raise CheckpointError(f"{path} has {state.get('total_steps')} total steps but the config gives "
                              f"{run.total_steps}: the run's config.yaml changed since it was saved; restore it")
    try:
        run.method.load_state_dict(state["model"])
        run.optimizer.load_state_dict(state["optimizer"])
        if run.scaler and state.get("scaler"):
            run.scaler.load_state_dict(state["scaler"])
    except (RuntimeError, ValueError, KeyError, TypeError, IndexError) as e:
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise CheckpointError(f"{path} does not fit this run's model and optimizer ({first}); it belongs to "
                              "another config") from e
    for param, slots in run.optimizer.state.items():
        for name, value in slots.items():
            if isinstance(value, torch.Tensor) and value.ndim and value.shape != param.shape:
                raise CheckpointError(f"{path}: optimizer slot {name!r} has shape {tuple(value.shape)} for a "
                                      f"parameter of shape {tuple(param.shape)}; it belongs to another config")
    try:
        run.step, run.elapsed_s = int(state["step"]), float(state.get("elapsed_s", 0.0))
        run.knn_online_s = float(state.get("knn_online_s", 0.0))
        run.last_loss = float(state.get("last_loss", float("nan")))
        run.knn_history = [dict(row) for row in state.get("knn_history", [])]
        mon = dict(state.get("monitor", {}))
        run.monitor.cost_s, run.monitor.alarmed = float(mon.get("cost_s", 0.0)), bool(mon.get("alarmed", False))
        run.monitor.strikes = int(mon.get("strikes", 0))
        run.monitor.ce_has_learned = bool(mon.get("ce_has_learned", False))
        run.monitor.ce_below = int(mon.get("ce_below", 0))
    except (TypeError, ValueError) as e:
        raise CheckpointError(f"{path}: its loop state is not what stopgrad writes ({e}); a damaged or forged "
                              "checkpoint") from e


def load_state(run_dir: Path) -> tuple[dict[str, Any], Path]:
    """The newest whole checkpoint of a run folder; a warning says when an older one stands in."""
    loaded = rundir.load_checkpoint(run_dir)
    if loaded.skipped:
        warnings.warn(f"{'; '.join(loaded.skipped)}; using {loaded.path} (step {loaded.state['step']}) "
                      "instead", ResumeWarning, stacklevel=3)
    return loaded.state, loaded.path
