"""The training loop's view of the diagnostics: every ``train.diag_every`` steps it computes the
collapse and dynamics metrics of :mod:`stopgrad.diagnostics` on the current batch, logs them under
``diag/``, saves eigenspectra to ``spectra.jsonl``, raises alarms, and optionally mirrors scalars
to TensorBoard and Weights & Biases (:mod:`stopgrad.trackers`). Its cost is timed and reported as a
fraction of training time."""

from __future__ import annotations

import json
import time
import warnings
from pathlib import Path
from typing import Any

import torch
from torch import nn

from stopgrad import diagnostics as D
from stopgrad import distributed as dist
from stopgrad.config import TrainConfig
from stopgrad.errors import StopgradError
from stopgrad.methods.base import Method, StepOutput
from stopgrad.trackers import Trackers


class CollapseError(StopgradError, RuntimeError):
    """A collapse alarm fired with ``train.stop_on_collapse``; the last good checkpoint is kept."""


class CollapseWarning(UserWarning):
    """A collapse alarm (printed once per run)."""


class Monitor:
    """Diagnostics, alarms and optional TensorBoard mirroring for one run."""

    def __init__(self, run_dir: Path, cfg: TrainConfig, method: Method, enabled: bool = True,
                 config: dict[str, Any] | None = None) -> None:
        self.run_dir, self.cfg, self.method, self.enabled = Path(run_dir), cfg, method, enabled
        self.strikes = 0
        self.alarmed = False
        self.ce_has_learned = False  # a softmax method's CE has left ln K for good once (see _alarm)
        self.ce_below = 0  # consecutive checks with the CE below the ln K band
        self.rows: int | None = None  # global batch of the last diagnostics (bounds the rank)
        self.cost_s = 0.0
        self._pre_bn: torch.Tensor | None = None
        self._hook = None
        self.trackers = Trackers(self.run_dir, cfg, config or {}, enabled=enabled)

    def due(self, step: int) -> bool:
        """The same in every process: under torchrun all of them take part in the gathers below."""
        return self.cfg.diag_every > 0 and step % self.cfg.diag_every == 0

    # ------------------------------------------------------------------ pre-BN capture (Jha Fig. 5)
    def before_forward(self, step: int) -> None:
        bn = self.method.head_bn()
        if self.due(step) and bn is not None:
            self._pre_bn = None
            self._hook = bn.register_forward_hook(self._capture)

    def _capture(self, module: nn.Module, inputs: tuple[torch.Tensor, ...], output: torch.Tensor) -> None:
        if self._pre_bn is None:  # the first view only
            self._pre_bn = inputs[0].detach()

    def after_forward(self) -> None:
        if self._hook is not None:
            self._hook.remove()
            self._hook = None

    # ------------------------------------------------------------------------------ metrics
    def compute(self, step: int, out: StepOutput) -> dict[str, float]:
        """All diagnostics of this step, keyed ``diag/<name>``, of the global batch: under torchrun
        the embeddings, features and pre-BN outputs are gathered from every process first (every
        process calls this; only the main one computes, the others get ``{}``)."""
        t0 = time.perf_counter()
        embeddings = [dist.all_gather_cat(z) for z in out.embeddings]
        features = dist.all_gather_cat(out.features) if out.features is not None else None
        pre_bn = dist.all_gather_cat(self._pre_bn) if self._pre_bn is not None else None
        self._pre_bn = None
        if not self.enabled:
            return {}
        metrics: dict[str, float] = {}
        if embeddings:
            self.rows = int(embeddings[0].shape[0])
            metrics.update(D.embedding_diagnostics(embeddings, features))
        if pre_bn is not None:
            metrics["center_norm_pre_bn"] = D.center_norm(pre_bn)
        mats = self.method.predictor_matrices()
        if mats is not None:
            metrics.update(D.predictor_diagnostics(*mats))
        if self.cfg.spectrum_every and step % self.cfg.spectrum_every == 0 and embeddings:
            spec = D.spectrum(embeddings[0]).tolist()
            with open(self.run_dir / "spectra.jsonl", "a") as f:
                f.write(json.dumps({"step": step, "spectrum": spec}) + "\n")
        self.cost_s += time.perf_counter() - t0
        return {f"diag/{k}": float(v) for k, v in metrics.items()}

    def check(self, step: int, metrics: dict[str, float], logs: dict[str, Any]) -> str | None:
        """Alarm message when a collapse condition has held ``alarm_patience`` checks in a row.

        Every process calls this: the main one decides, and with ``train.stop_on_collapse`` every
        process stops together (the decision is broadcast)."""
        text = self._alarm(step, metrics, logs) if self.enabled else None
        stop = bool(dist.broadcast_object(bool(text and self.cfg.stop_on_collapse)))
        if stop:
            raise CollapseError(f"{text or 'collapse alarm (see the main process)'}; stopped "
                                f"(train.stop_on_collapse) with the last good checkpoint kept in {self.run_dir}")
        return text

    def _alarm(self, step: int, metrics: dict[str, float], logs: dict[str, Any]) -> str | None:
        message = None
        if out_d := (self.method_dim(metrics)):
            message = D.collapse_alarm(metrics, out_d, self.rows)
        if "softmax_ce" in logs and hasattr(self.method, "softmax_classes"):
            # A fresh softmax head starts near CE = ln K: only a *return* to ln K, after the CE has
            # stayed below the band for UNIFORM_ARM_CHECKS (or alarm_patience) checks in a row, is
            # uniform collapse. A fresh DINO head on Fashion-MNIST starts just below the band
            # (6.73 < 0.98·ln 1024 at step 0), rises above ln K and comes back down through the band
            # by step 150: armed by its first check alone, the alarm fired on every healthy DINO run.
            ce, k = float(logs["softmax_ce"]), int(self.method.softmax_classes)
            self.ce_below = self.ce_below + 1 if D.below_uniform_band(ce, k) else 0
            arm = max(D.UNIFORM_ARM_CHECKS, self.cfg.alarm_patience)
            self.ce_has_learned = self.ce_has_learned or self.ce_below >= arm
            if message is None and self.ce_has_learned:
                message = D.uniform_collapse_alarm(ce, k)
        self.strikes = self.strikes + 1 if message else 0
        if not message or self.strikes < self.cfg.alarm_patience:
            return None
        text = f"collapse alarm at step {step}: {message}"
        if not self.alarmed:
            warnings.warn(text, CollapseWarning, stacklevel=3)
            self.alarmed = True
        return text

    @staticmethod
    def method_dim(metrics: dict[str, float]) -> int | None:
        ref = metrics.get("diag/dim_std_ref")
        return round(1.0 / ref**2) if ref else None

    def scalars(self, step: int, row: dict[str, Any]) -> None:
        self.trackers.scalars(step, row)

    def close(self) -> None:
        self.trackers.close()
