"""Reader for the IDX format of MNIST and Fashion-MNIST (gzipped or not).

Format (http://yann.lecun.com/exdb/mnist/): a big-endian header ``0x00 0x00 <type>
<ndim>``, then ``ndim`` uint32 sizes, then the data in C order. Type 0x08 is uint8.
"""

import gzip
import math
import struct
import zlib
from pathlib import Path
from typing import BinaryIO

import numpy as np

from stopgrad.data.errors import corrupt

IDX_DTYPES: dict[int, str] = {0x08: "u1", 0x09: "i1", 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}
_GZIP_MAGIC = b"\x1f\x8b"
_MAX_BYTES = 1 << 36  # 64 GiB: larger dims come from a corrupt header, not a real file


def read_idx(path: Path) -> np.ndarray:
    """Reads an IDX file, gzipped or not (detected from the content, not the name).

    The data is decompressed straight into the output array; there is no per-item work.

    Args:
        path: The file.

    Returns:
        Array with the dims and dtype stored in the header.

    Raises:
        CorruptDatasetError: Bad magic number, unknown type, truncated data, trailing
            bytes or a damaged gzip stream; the message names the file.
    """
    with open(path, "rb") as raw:
        is_gzip = raw.read(2) == _GZIP_MAGIC
    try:
        with (gzip.open(path, "rb") if is_gzip else open(path, "rb")) as f:
            return _read(f, path)
    except (EOFError, zlib.error, gzip.BadGzipFile) as error:
        raise corrupt(path, f"damaged gzip stream ({error})") from error


def _read(f: BinaryIO, path: Path) -> np.ndarray:
    magic = _read_exact(f, 4, path, "the 4-byte magic number")
    if magic[:2] != b"\0\0" or magic[2] not in IDX_DTYPES or magic[3] == 0:
        raise corrupt(
            path,
            f"bad IDX magic number 0x{magic.hex()} (expected 0x0000 then a type byte in "
            f"{[hex(t) for t in IDX_DTYPES]} and the number of dims, e.g. 0x00000803 for images)",
        )
    dtype, ndim = np.dtype(IDX_DTYPES[magic[2]]), magic[3]
    dims = struct.unpack(f">{ndim}I", _read_exact(f, 4 * ndim, path, f"{ndim} dims"))
    nbytes = math.prod(dims) * dtype.itemsize
    if nbytes > _MAX_BYTES:
        raise corrupt(path, f"header dims {dims} imply {nbytes} bytes, impossibly many")
    out = np.empty(dims, dtype=dtype)
    got = _readinto(f, memoryview(out.reshape(-1).view(np.uint8)))
    if got < nbytes:
        raise corrupt(path, f"truncated: header dims {dims} need {nbytes} data bytes, found {got}")
    if f.read(1):
        raise corrupt(path, f"trailing bytes after the {nbytes} data bytes of dims {dims}")
    return out


def _read_exact(f: BinaryIO, n: int, path: Path, what: str) -> bytes:
    data = f.read(n)
    if len(data) != n:
        raise corrupt(path, f"truncated: file ends inside the header ({what})")
    return data


def _readinto(f: BinaryIO, buffer: memoryview) -> int:
    got = 0
    while got < len(buffer):
        n = f.readinto(buffer[got:])
        if not n:
            break
        got += n
    return got
