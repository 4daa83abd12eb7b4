"""Safe readers for ``.npy`` arrays and ``.npz`` archives from users.

``np.load`` trusts a file: it allocates what a header declares, decompresses
a whole ``.npz`` member before anything looks at it, and lets zlib, zipfile
and the header parser raise whatever they raise. The readers here check
first and read last:

1. ``.npz``: the zip's central directory only (:class:`NpzArchive`). Every
   member must be a ``NAME.npy``, appear once, be neither encrypted nor
   compressed by anything but *stored* or *deflated*, and declare an
   uncompressed size under :data:`MAX_ARRAY_BYTES` (all of them together
   under :data:`MAX_TOTAL_BYTES`). The zip reader never produces more bytes
   than a member declares, so these sizes bound every later read.
2. The ``.npy`` header of an array (:class:`Header`): only its few hundred
   bytes are read (and decompressed). Object, structured and sub-array
   dtypes are refused (no pickles, ever), and the declared shape times the
   item size must fit :data:`MAX_ARRAY_BYTES` and the bytes the file or
   member really holds. A caller's ``check`` sees the header here, before
   any data, to refuse a wrong dtype or shape by name.
3. The data: exactly the declared bytes, then the end of the member (so
   zip's CRC is checked).

Every problem is one :class:`NpFileError` line that names the file and, in
an archive, the member (``net.npz: w1: ...``), and, for a limit, the limit.
Any exception of the libraries underneath becomes one too.

Pure numpy and Python: no Amaranth or cocotb here.
"""

from __future__ import annotations

import math
import os
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
from numpy.lib import format as npformat

__all__ = ["MAX_ARRAY_BYTES", "MAX_TOTAL_BYTES", "MAX_MEMBERS", "Header", "NpFileError", "NpzArchive",
           "one_line", "read_npy"]

MAX_ARRAY_BYTES = 256 << 20
"""Largest array (declared shape x item size) a reader accepts: 256 MiB, a 16384 x 16384 int8 matrix,
1000 times the weights the ``large`` preset holds on chip; the model would take hours on more."""
MAX_TOTAL_BYTES = 1 << 30
"""Largest sum of the declared member sizes of one ``.npz``: 1 GiB."""
MAX_MEMBERS = 1 << 18
"""Most members of one ``.npz`` (a NET.npz of the contract's 65536 layers has 262143)."""
MAX_HEADER_BYTES = 10000
"""Longest ``.npy`` header read (numpy's own default limit)."""

_NPY_MAGIC = b"\x93NUMPY"
_ZIP_MAGIC = (b"PK\x03\x04", b"PK\x05\x06")
_METHODS = {zipfile.ZIP_STORED: "stored", zipfile.ZIP_DEFLATED: "deflated"}


class NpFileError(ValueError):
    """An array file that cannot be read safely; the message (one line) names the file and the member."""


def _mib(n: int) -> str:
    return f"{n / (1 << 20):g} MiB" if n >= 1 << 20 else f"{n} bytes"


def one_line(e: BaseException) -> str:
    """An exception as a short phrase for a one-line message."""
    text = str(e).splitlines()[0].strip() if str(e).strip() else ""
    text = text[:100] + ("..." if len(text) > 100 else "")
    return f"{type(e).__name__}: {text}" if text else type(e).__name__


@dataclass(frozen=True)
class Header:
    """What a ``.npy`` header declares (numpy's ``shape``, ``fortran_order``, ``dtype``)."""

    shape: tuple
    fortran_order: bool
    dtype: np.dtype
    data_offset: int            # bytes from the start of the .npy to the first data byte

    @property
    def ndim(self) -> int:
        return len(self.shape)

    @property
    def size(self) -> int:
        return math.prod(self.shape)

    @property
    def nbytes(self) -> int:
        return self.size * self.dtype.itemsize


def _read_header(fp, where: str, max_bytes: int) -> Header:
    """Read and check a .npy header from ``fp`` (positioned at the magic). Raises NpFileError."""
    try:
        start = fp.read(len(_NPY_MAGIC))
        if start != _NPY_MAGIC:
            if start[:4] in _ZIP_MAGIC:
                raise NpFileError(f"{where}: a .npz archive, not a .npy array")
            raise NpFileError(f"{where}: not a readable .npy file (no .npy magic at the start)")
        version = tuple(fp.read(2))
        if version == (1, 0):
            shape, fortran, dtype = npformat.read_array_header_1_0(fp, max_header_size=MAX_HEADER_BYTES)
        elif version == (2, 0):
            shape, fortran, dtype = npformat.read_array_header_2_0(fp, max_header_size=MAX_HEADER_BYTES)
        else:
            raise NpFileError(f"{where}: .npy format version {'.'.join(map(str, version)) or '?'} is not "
                              f"supported (1.0 and 2.0 are)")
        offset = fp.tell()          # the data follows the header (numpy pads it to 16 or 64 bytes)
    except NpFileError:
        raise
    except ValueError as e:             # numpy's header parser
        raise NpFileError(f"{where}: not a readable .npy file ({one_line(e)})") from None
    except Exception as e:  # noqa: BLE001 - zlib.error, BadZipFile (CRC), OSError, EOFError, ...: one message
        raise NpFileError(f"{where}: cannot read it ({one_line(e)})") from None
    dtype = np.dtype(dtype)
    if dtype.hasobject:
        raise NpFileError(f"{where}: dtype {dtype} holds Python objects (pickles), which are never loaded")
    if dtype.names is not None or dtype.subdtype is not None or dtype.kind == "V":
        raise NpFileError(f"{where}: dtype {dtype} is structured; a plain numeric array is expected")
    if dtype.itemsize == 0:
        raise NpFileError(f"{where}: dtype {dtype} has no bytes an element")
    if not all(isinstance(n, int) and n >= 0 for n in shape) or len(shape) > 32:
        raise NpFileError(f"{where}: shape {shape} is not an array shape")
    h = Header(tuple(shape), bool(fortran), dtype, offset)
    if h.nbytes > max_bytes:
        raise NpFileError(f"{where}: shape {h.shape} of {dtype} declares {h.nbytes} bytes, more than the "
                          f"limit of {_mib(max_bytes)} per array")
    return h


def _read_data(fp, h: Header, where: str, available: int) -> np.ndarray:
    """The array of ``h`` from ``fp`` (positioned at the data); ``available`` is the number of bytes the file
    or member holds after the header."""
    if available < h.nbytes:
        raise NpFileError(f"{where}: truncated: shape {h.shape} of {h.dtype} needs {h.nbytes} bytes of data, "
                          f"the file holds {available}")
    if available > h.nbytes:
        raise NpFileError(f"{where}: {available - h.nbytes} bytes after the array its header declares "
                          f"(shape {h.shape} of {h.dtype})")
    try:
        buf = bytearray(h.nbytes)
        got = fp.readinto(buf) if h.nbytes else 0
        while got < h.nbytes:               # a zip member may come in pieces
            more = fp.readinto(memoryview(buf)[got:])
            if not more:
                break
            got += more
        if got != h.nbytes:
            raise NpFileError(f"{where}: truncated: {got} of {h.nbytes} data bytes")
        if fp.read(1):
            raise NpFileError(f"{where}: more data than its header declares")
    except NpFileError:
        raise
    except Exception as e:  # noqa: BLE001 - zlib.error, BadZipFile (CRC), OSError, EOFError, ...: one message
        raise NpFileError(f"{where}: cannot read its data ({one_line(e)})") from None
    try:
        a = np.frombuffer(buf, dtype=h.dtype, count=h.size)
        return a.reshape(h.shape[::-1]).transpose() if h.fortran_order else a.reshape(h.shape)
    except Exception as e:  # noqa: BLE001
        raise NpFileError(f"{where}: cannot make an array of it ({one_line(e)})") from None


def read_npy(path, where: str | None = None, check: Callable[[Header], None] | None = None,
             max_bytes: int = MAX_ARRAY_BYTES) -> np.ndarray:
    """Read a ``.npy`` file safely (module docstring).

    ``where`` names the file in messages (default: ``path``). ``check(header)`` is called after the header
    is read and before any data is; it raises its own error to refuse the array.
    """
    where = str(path) if where is None else where
    try:
        f = open(path, "rb")
    except Exception as e:  # noqa: BLE001
        raise NpFileError(f"{where}: cannot open it ({one_line(e)})") from None
    with f:
        h = _read_header(f, where, max_bytes)
        if check is not None:
            check(h)
        try:
            available = os.fstat(f.fileno()).st_size - h.data_offset
        except Exception as e:  # noqa: BLE001
            raise NpFileError(f"{where}: cannot read it ({one_line(e)})") from None
        return _read_data(f, h, where, available)


class NpzArchive:
    """A ``.npz`` opened for safe reading (module docstring); use as a context manager.

    Parameters
    ----------
    path : path-like
        The archive.
    where : str, optional
        How messages name it (default: ``path``).
    max_array_bytes, max_total_bytes, max_members : int
        Limits (module constants by default).

    Members
    -------
    fields : list of str
        The member names without ``.npy``, in archive order.
    """

    def __init__(self, path, where: str | None = None, max_array_bytes: int = MAX_ARRAY_BYTES,
                 max_total_bytes: int = MAX_TOTAL_BYTES, max_members: int = MAX_MEMBERS):
        self.where = str(path) if where is None else where
        self.max_array_bytes = max_array_bytes
        self._headers: dict[str, Header] = {}
        try:
            with open(path, "rb") as f:
                start = f.read(len(_NPY_MAGIC))
        except Exception as e:  # noqa: BLE001
            raise NpFileError(f"{self.where}: cannot open it ({one_line(e)})") from None
        if start == _NPY_MAGIC:
            raise NpFileError(f"{self.where}: a .npy array, not a .npz archive of named arrays")
        try:
            self._zip = zipfile.ZipFile(path)
        except Exception as e:  # noqa: BLE001 - BadZipFile, OSError, ValueError, ...: one message
            raise NpFileError(f"{self.where}: not a readable .npz file ({one_line(e)})") from None
        try:
            self._infos = self._check_directory(max_total_bytes, max_members)
        except BaseException:
            self._zip.close()
            raise
        self.fields = list(self._infos)

    def _check_directory(self, max_total_bytes: int, max_members: int) -> dict:
        infos = self._zip.infolist()
        if len(infos) > max_members:
            raise NpFileError(f"{self.where}: {len(infos)} members, more than the limit of {max_members}")
        out, total = {}, 0
        for info in infos:
            name = info.filename
            shown = repr(name[:60] + ("..." if len(name) > 60 else ""))
            if not name.endswith(".npy") or info.is_dir() or len(name) <= 4:
                raise NpFileError(f"{self.where}: member {shown} is not a .npy array (a .npz holds NAME.npy "
                                  f"members only)")
            field = name[:-4]
            if field in out:
                raise NpFileError(f"{self.where}: {field}: appears twice in the archive")
            if info.flag_bits & 0x1:
                raise NpFileError(f"{self.where}: {field}: encrypted members are not supported")
            if info.compress_type not in _METHODS:
                method = zipfile.compressor_names.get(info.compress_type, "unknown")
                raise NpFileError(f"{self.where}: {field}: compression method {info.compress_type} ({method}) "
                                  f"is not supported (stored and deflated are)")
            if info.file_size > self.max_array_bytes + MAX_HEADER_BYTES + 16:
                raise NpFileError(f"{self.where}: {field}: declares {info.file_size} bytes uncompressed, more "
                                  f"than the limit of {_mib(self.max_array_bytes)} per array")
            total += info.file_size
            if total > max_total_bytes:
                raise NpFileError(f"{self.where}: its members declare more than the limit of "
                                  f"{_mib(max_total_bytes)} in all (at {field})")
            out[field] = info
        return out

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def close(self):
        self._zip.close()

    def _open(self, field: str):
        if field not in self._infos:
            raise NpFileError(f"{self.where}: {field}: no such member")
        try:
            return self._zip.open(self._infos[field])
        except Exception as e:  # noqa: BLE001
            raise NpFileError(f"{self.where}: {field}: cannot read it ({one_line(e)})") from None

    def header(self, field: str) -> Header:
        """The member's .npy header, checked against the limits; only the header bytes are decompressed."""
        if field not in self._headers:
            with self._open(field) as f:
                self._headers[field] = _read_header(f, f"{self.where}: {field}", self.max_array_bytes)
        return self._headers[field]

    def read(self, field: str, check: Callable[[Header], None] | None = None) -> np.ndarray:
        """The member's array; ``check(header)`` is called before any data is read (as in :func:`read_npy`)."""
        h = self.header(field)
        if check is not None:
            check(h)
        where = f"{self.where}: {field}"
        with self._open(field) as f:
            try:
                skipped = len(f.read(h.data_offset))
            except Exception as e:  # noqa: BLE001
                raise NpFileError(f"{where}: cannot read it ({one_line(e)})") from None
            if skipped != h.data_offset:
                raise NpFileError(f"{where}: truncated in its header")
            return _read_data(f, h, where, self._infos[field].file_size - h.data_offset)
