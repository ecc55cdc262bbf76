"""A polite stop: SIGTERM ends training at a step boundary, with a checkpoint of that step.

SIGTERM is what SLURM (at a job's time limit or on preemption, some seconds before SIGKILL),
Kubernetes, ``systemd`` and a plain ``kill PID`` send. Python's default for it is to die at once,
losing everything since the last periodic checkpoint. Inside :func:`stop_requests` the signal
only sets a flag; the training loop looks at it after each step, writes a checkpoint of the
finished step and stops as after Ctrl-C, so ``stopgrad resume RUN`` continues exactly where it
stopped. A second SIGTERM before the step ends stops at once (still writing a checkpoint, as
Ctrl-C does). Ctrl-C itself is left alone: it interrupts where it lands.

Under SLURM, ``#SBATCH --signal=TERM@60`` (or ``B:TERM@60`` for the batch shell) asks for the
signal a minute before the time limit, which leaves a slow step time to finish.
"""

from __future__ import annotations

import signal
import threading
from contextlib import contextmanager
from typing import Iterator

#: The signals that ask for a polite stop.
POLITE = (signal.SIGTERM,)


class StopRequest:
    """The name of the first stop signal received (``None`` while none has arrived)."""

    def __init__(self) -> None:
        self.signal_name: str | None = None

    def __bool__(self) -> bool:
        return self.signal_name is not None


@contextmanager
def stop_requests(signals: tuple[signal.Signals, ...] = POLITE) -> Iterator[StopRequest]:
    """Within the block, ``signals`` set the yielded :class:`StopRequest` instead of ending the
    process; a second one raises :class:`KeyboardInterrupt`. The previous handlers are restored
    on exit.

    Only the main thread may set signal handlers, so elsewhere (a run started from a worker
    thread) the request simply stays empty. A signal the process was told to ignore stays ignored.
    """
    request = StopRequest()
    if threading.current_thread() is not threading.main_thread():
        yield request
        return

    def handler(signum: int, frame: object) -> None:
        if request:
            raise KeyboardInterrupt(f"a second {signal.Signals(signum).name}")
        request.signal_name = signal.Signals(signum).name

    previous = {}
    for sig in signals:
        if signal.getsignal(sig) is not signal.SIG_IGN:
            previous[sig] = signal.signal(sig, handler)
    try:
        yield request
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)
