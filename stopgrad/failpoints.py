"""Named points where the fault tests kill a run, to prove a crash anywhere loses nothing.

``STOPGRAD_FAILPOINT=NAME`` (or ``NAME:N``) makes the process send itself SIGKILL the first (or
N-th) time it reaches :func:`hit` with that name: no handler, no flush, no ``finally`` runs, as
when the machine loses power or the scheduler kills a job. Unset (always, outside the tests),
:func:`hit` is one dictionary lookup.

Points: ``step.forward`` (between forward and backward), ``step.optimizer`` (after the optimizer
step, before EMA and hooks), ``metrics.append`` (half a JSON line written), ``checkpoint.write``
(inside ``torch.save``'s file, before fsync), ``checkpoint.recorded`` (sha256 recorded, nothing
renamed), ``checkpoint.rotated`` (latest moved to previous, new one not yet in place),
``knn.online`` (inside the online kNN), ``final.knn`` (inside the final kNN), ``final.linear``
(inside the final linear probe), ``summary.write`` (the summary's temp file written, not renamed),
``rundir.staged`` (the new run folder staged, not yet in place).
"""

from __future__ import annotations

import os
import signal

_SPEC = os.environ.get("STOPGRAD_FAILPOINT", "")
_NAME, _, _COUNT = _SPEC.partition(":")
_TARGET = int(_COUNT) if _COUNT.isdigit() else 1
_SEEN = {"n": 0}


def hit(name: str) -> None:
    """Kill this process here when ``STOPGRAD_FAILPOINT`` names this point (and its count is reached)."""
    if name != _NAME:
        return
    _SEEN["n"] += 1
    if _SEEN["n"] >= _TARGET:
        os.kill(os.getpid(), signal.SIGKILL)
