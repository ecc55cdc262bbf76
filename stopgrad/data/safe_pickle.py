"""An unpickler for the CIFAR python archives that can build arrays, lists and dicts and nothing else.

The official CIFAR batches are pickles written by Python 2 with numpy: dicts of byte strings,
lists of ints, and uint8 arrays rebuilt through ``numpy.core.multiarray._reconstruct``. A pickle
can name any callable, so an archive from a mirror or a colleague could run code when loaded
with :mod:`pickle`. :class:`ArrayUnpickler` resolves only the few globals an array needs, each
wrapped so it cannot build an object array (whose items a pickle could choose); any other global
is refused before it is imported, and nothing from the file runs.

Examples:
    >>> import io, pickle, numpy as np
    >>> blob = pickle.dumps({b"data": np.zeros((2, 3), np.uint8)}, protocol=2)
    >>> load_arrays(io.BytesIO(blob))[b"data"].shape
    (2, 3)
"""

from __future__ import annotations

import codecs
import pickle
from typing import Any, BinaryIO, Callable

import numpy as np

try:
    from numpy._core import multiarray as _multiarray
    from numpy._core import numeric as _numeric
except ImportError:  # numpy < 2
    from numpy.core import multiarray as _multiarray  # type: ignore[no-redef]
    from numpy.core import numeric as _numeric  # type: ignore[no-redef]


class UnsafePickleError(pickle.UnpicklingError):
    """The pickle names a global outside the array format; nothing was run."""


def _plain_dtype(spec: Any, *args: Any) -> np.dtype:
    dtype = np.dtype(spec, *args)
    if dtype.hasobject:
        raise UnsafePickleError(f"an object array (dtype {dtype}) is not part of the format")
    return dtype


def _reconstruct(subtype: Any, shape: Any, typecode: Any) -> np.ndarray:
    if subtype is not np.ndarray:
        raise UnsafePickleError(f"an array of type {subtype!r} is not part of the format")
    return _multiarray._reconstruct(np.ndarray, shape, typecode)


def _frombuffer(buffer: Any, dtype: Any, shape: Any, order: Any) -> np.ndarray:
    return _numeric._frombuffer(buffer, _plain_dtype(dtype), shape, order)


def _latin1(text: Any, encoding: str = "latin1") -> bytes:
    """Python 3's protocol-2 pickles spell bytes as ``_codecs.encode(str, 'latin1')``."""
    if not isinstance(text, str) or encoding not in ("latin1", "latin-1"):
        raise UnsafePickleError("_codecs.encode is allowed only to spell bytes in latin-1")
    return codecs.encode(text, encoding)


ALLOWED: dict[tuple[str, str], Callable[..., Any] | type] = {}
for _module in ("numpy.core.multiarray", "numpy._core.multiarray"):
    ALLOWED[(_module, "_reconstruct")] = _reconstruct
for _module in ("numpy.core.numeric", "numpy._core.numeric"):
    ALLOWED[(_module, "_frombuffer")] = _frombuffer
ALLOWED[("numpy", "ndarray")] = np.ndarray
ALLOWED[("numpy", "dtype")] = _plain_dtype
ALLOWED[("_codecs", "encode")] = _latin1


class ArrayUnpickler(pickle.Unpickler):
    """:class:`pickle.Unpickler` whose ``find_class`` knows only :data:`ALLOWED`."""

    def find_class(self, module: str, name: str) -> Any:
        try:
            return ALLOWED[(module, name)]
        except KeyError:
            raise UnsafePickleError(f"it refers to {module}.{name}, which is not part of the format") from None


def load_arrays(f: BinaryIO) -> Any:
    """Unpickle ``f`` (byte strings kept as bytes, as the official files need) with :class:`ArrayUnpickler`."""
    return ArrayUnpickler(f, encoding="bytes").load()
