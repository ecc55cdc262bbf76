"""Experiment trackers beside ``metrics.jsonl``: TensorBoard (``train.tensorboard``) and Weights &
Biases (``train.wandb``). Both are optional dependencies, mirrors of what the run folder already
holds; a missing package is a config error that says what to install.

W&B: ``train.wandb_project``, ``train.wandb_name`` (default: the run folder's name) and
``train.wandb_mode`` (``online``, or ``offline`` to write ``RUN/wandb`` for a later ``wandb sync``).
The W&B run id is kept in ``RUN/wandb/stopgrad-run-id``, so a resumed run continues the same W&B run.
"""

from __future__ import annotations

import secrets
from pathlib import Path
from typing import Any

from stopgrad.config import ConfigError, TrainConfig

WANDB_MODES = ("online", "offline")


class Trackers:
    """The trackers a run's config asks for; ``scalars`` and ``summary`` go to each of them."""

    def __init__(self, run_dir: Path, cfg: TrainConfig, config: dict[str, Any], enabled: bool = True) -> None:
        self.run_dir, self.cfg, self.config, self.enabled = Path(run_dir), cfg, config, enabled
        self.tb = self.wandb = None
        self.opened = False

    def open(self) -> None:
        """Open the trackers on first use (a training loop), so evaluation commands never create one."""
        if self.opened or not self.enabled:
            return
        self.opened = True
        cfg, run_dir, config = self.cfg, self.run_dir, self.config
        if cfg.tensorboard:
            try:
                from torch.utils.tensorboard import SummaryWriter
            except ImportError as e:
                raise ConfigError("train.tensorboard=true needs the tensorboard package: "
                                  "pip install -c constraints.txt 'stopgrad[tensorboard]'") from e
            self.tb = SummaryWriter(str(Path(run_dir) / "tensorboard"))
        if cfg.wandb:
            self.wandb = open_wandb(Path(run_dir), cfg, config)

    def scalars(self, step: int, row: dict[str, Any]) -> None:
        self.open()
        values = {k: float(v) for k, v in row.items()
                  if isinstance(v, (int, float)) and not isinstance(v, bool) and k not in ("step",)}
        if self.tb is not None:
            for k, v in values.items():
                self.tb.add_scalar(k, v, step)
        if self.wandb is not None and values:
            self.wandb.log(values, step=step)

    def summary(self, summary: dict[str, Any]) -> None:
        self.open()
        if self.wandb is not None:
            for k, v in summary.items():
                if isinstance(v, (int, float, str)) and not isinstance(v, bool):
                    self.wandb.summary[k] = v

    def close(self) -> None:
        if self.tb is not None:
            self.tb.close()
        if self.wandb is not None:
            self.wandb.finish()
            self.wandb = None


def open_wandb(run_dir: Path, cfg: TrainConfig, config: dict[str, Any]) -> Any:
    try:
        import wandb
    except ImportError as e:
        raise ConfigError("train.wandb=true needs the wandb package: pip install -c constraints.txt "
                          "'stopgrad[wandb]' (or set train.wandb=false)") from e
    folder = run_dir / "wandb"
    folder.mkdir(exist_ok=True)
    id_file = folder / "stopgrad-run-id"
    run_id = id_file.read_text().strip() if id_file.exists() else secrets.token_hex(4)  # W&B ids: [a-z0-9]
    id_file.write_text(run_id + "\n")
    return wandb.init(project=cfg.wandb_project, name=cfg.wandb_name or run_dir.name, id=run_id, resume="allow",
                      dir=str(run_dir), mode=cfg.wandb_mode, config=config, settings=wandb.Settings(silent=True))
