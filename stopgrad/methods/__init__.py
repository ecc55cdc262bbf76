"""Method registry: importing this package registers every built-in method."""

from stopgrad.methods.base import METHODS, Method, StepOutput, ema_update, get_method, register
from stopgrad.methods import simsiam, byol  # noqa: F401  (registration side effect)
from stopgrad.methods import directpred, directcopy, directset  # noqa: F401
from stopgrad.methods import simple  # noqa: F401
from stopgrad.methods import simclr, barlow, swav, dino  # noqa: F401
from stopgrad.methods import supervised  # noqa: F401

__all__ = ["METHODS", "Method", "StepOutput", "ema_update", "get_method", "register"]
