"""Atomic file writes: the text goes to ``<path>.tmp``, is fsynced, and is renamed over ``path``,
so a reader (or a resumed run) sees the old file or the new one, never half of either."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from stopgrad import failpoints
from stopgrad.errors import with_path


def write_text(path: Path, text: str, failpoint: str | None = None) -> None:
    """Write ``text`` to ``path`` atomically; an OS error names ``path`` and leaves no temp file.

    ``failpoint`` names the point between the fsync and the rename where the fault tests kill
    the process (:mod:`stopgrad.failpoints`).
    """
    path = Path(path)
    tmp = path.with_name(path.name + ".tmp")
    with removing_on_error(tmp, path):
        with open(tmp, "w") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        if failpoint:
            failpoints.hit(failpoint)
        os.replace(tmp, path)


@contextmanager
def removing_on_error(tmp: Path, path: Path) -> Iterator[None]:
    """On any error inside, remove the temp file ``tmp``; an OS error is re-raised naming ``path``."""
    try:
        yield
    except OSError as e:
        tmp.unlink(missing_ok=True)
        raise with_path(e, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
