"""The output discipline every command that writes files keeps.

1. Before any work, :class:`Outputs` checks every output it is given: not a directory, not a device, FIFO
   or socket (only ``-`` means standard output, and only where a command allows it), its directory exists
   and is writable, an existing file is writable, and no output is the same file as an input or as another
   output (compared after resolving symlinks, and by inode where both exist, so hard links count).
2. The command stages what it will write (:meth:`Outputs.stage`, :meth:`Outputs.stage_dir`): nothing is
   written while it works, so an error or Ctrl-C leaves every file as it was.
3. :meth:`Outputs.commit` flushes standard output (a full or closed one fails here, before any file is
   touched), writes every output to a temporary file beside it, and only when all were written renames them
   into place. An ``OSError`` anywhere is one line naming the path.

A symlink given as an output is followed: the file it points to is replaced and the link stays.
"""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path

from .common import CliError

__all__ = ["Outputs"]


def _real(path) -> Path:
    return Path(os.path.realpath(path))


def _same(a: Path, b: Path) -> bool:
    if a == b:
        return True
    try:
        return os.path.samefile(a, b)
    except OSError:            # one of them does not exist yet
        return False


class Outputs:
    """Parameters
    ----------
    outputs : list of (flag, path)
        Files the command will write (``path`` None: not given).
    inputs : list of (flag, path)
        Files the command reads (``path`` None, or a preset name that is not a file: skipped).
    stdout_ok : tuple of flags
        Outputs that may be ``-`` (standard output).
    dirs : list of (flag, path, names)
        Output directories (``--plot DIR``) and the file names the command may write into them.
    """

    def __init__(self, outputs, inputs=(), stdout_ok=(), dirs=()):
        self._staged = []                               # (flag, shown path, real path or None for '-', data)
        self._real = {}                                 # flag -> real path
        self._inputs = [(f, p, _real(p)) for f, p in inputs if p and p != "-" and Path(p).is_file()]
        for flag, path in outputs:
            if path:
                self._real[flag] = self._check_file(flag, str(path), flag in stdout_ok)
        self._dirs = {}
        for flag, path, names in dirs:
            if path:
                d = self._check_dir(flag, str(path))
                self._dirs[flag] = d
                for name in names:
                    self._check_not_input(flag, str(Path(path) / name), d / name)
        seen = {}
        for flag, real in self._real.items():
            if real is None:
                continue
            for other, r in seen.items():
                if _same(real, r):
                    raise CliError(f"{flag} and {other} name the same file ({real}): give each output its own")
            seen[flag] = real

    # -- checks before any work ---------------------------------------------------------------------------

    def _check_file(self, flag, path, stdout_ok):
        if path == "-":
            if not stdout_ok:
                raise CliError(f"{flag} -: standard output is not accepted here; give a file name")
            return None
        real = _real(path)
        if real.is_dir() or path.endswith(("/", os.sep)):
            raise CliError(f"{flag} {path}: is a directory; give a file name")
        if real.exists() and not real.is_file():
            raise CliError(f"{flag} {path}: not a regular file (a device, FIFO or socket); give a file name"
                           + (" or -" if stdout_ok else ""))
        if real.exists() and not os.access(real, os.W_OK):
            raise CliError(f"{flag} {path}: the file is not writable")
        self._check_parent(flag, path, real.parent)
        self._check_not_input(flag, path, real)
        return real

    def _check_dir(self, flag, path):
        real = _real(path)
        if real.exists() and not real.is_dir():
            raise CliError(f"{flag} {path}: not a directory")
        if real.is_dir():
            if not os.access(real, os.W_OK | os.X_OK):
                raise CliError(f"{flag} {path}: the directory is not writable")
            return real
        top = real.parent                      # made with its parents at commit: the first that exists decides
        while not top.exists():
            top = top.parent
        if not top.is_dir():
            raise CliError(f"{flag} {path}: {top} is not a directory")
        if not os.access(top, os.W_OK | os.X_OK):
            raise CliError(f"{flag} {path}: directory {top} is not writable")
        return real

    @staticmethod
    def _check_parent(flag, path, parent: Path):
        if not parent.is_dir():
            raise CliError(f"{flag} {path}: directory {parent} does not exist")
        if not os.access(parent, os.W_OK | os.X_OK):
            raise CliError(f"{flag} {path}: directory {parent} is not writable")

    def _check_not_input(self, flag, path, real: Path):
        for iflag, ipath, ireal in self._inputs:
            if _same(real, ireal):
                raise CliError(f"{flag} {path}: the same file as the input {iflag} {ipath}; "
                               "an output never overwrites an input")

    # -- staging and writing ------------------------------------------------------------------------------

    def stage(self, flag, path, data: str | bytes):
        """Write ``data`` to the output ``flag`` (checked in the constructor) at :meth:`commit`."""
        if flag not in self._real:
            raise AssertionError(f"output {flag} was not checked before the work")
        self._staged.append((flag, str(path), self._real[flag], data))

    def stage_dir(self, flag, files):
        """Copy ``files`` (paths written in a scratch folder) into the directory ``flag`` at :meth:`commit`."""
        d = self._dirs[flag]
        for f in files:
            f = Path(f)
            self._staged.append((flag, str(d / f.name), d / f.name, f.read_bytes()))

    def scratch(self):
        """A temporary folder for tools that write files themselves (plots); removed when the context ends."""
        return tempfile.TemporaryDirectory(prefix="rramcim-")

    def commit(self):
        """Flush standard output, write every staged output to a temporary file, then rename them all."""
        try:
            sys.stdout.flush()
        except (OSError, ValueError, AttributeError) as e:
            raise CliError(f"standard output: cannot write ({getattr(e, 'strerror', None) or e}); "
                           "no output file written") from None
        temps = []
        try:
            for flag, shown, real, data in self._staged:
                if real is None:
                    continue
                real.parent.mkdir(parents=True, exist_ok=True)          # a --plot DIR made now, not before
                temps.append((flag, shown, real, _write_temp(flag, shown, real, data)))
            for flag, shown, real, tmp in temps:
                try:
                    os.replace(tmp, real)
                except OSError as e:
                    raise CliError(f"{flag} {shown}: cannot write ({e.strerror})") from None
        except OSError as e:
            raise CliError(f"{e.filename or 'output'}: cannot write ({e.strerror})") from None
        finally:
            for *_, tmp in temps:
                Path(tmp).unlink(missing_ok=True)
        for flag, shown, real, data in self._staged:
            if real is None:
                out = sys.stdout.buffer if isinstance(data, bytes) else sys.stdout
                out.write(data)
                out.flush()


def _write_temp(flag, shown, real: Path, data) -> str:
    """``data`` in a new temporary file beside ``real``, with the mode a new file would get."""
    try:
        fd, tmp = tempfile.mkstemp(dir=real.parent, prefix=f".{real.name}.", suffix=".tmp")
    except OSError as e:
        raise CliError(f"{flag} {shown}: cannot write in {real.parent} ({e.strerror})") from None
    try:
        with os.fdopen(fd, "wb" if isinstance(data, bytes) else "w") as f:
            f.write(data)
        if real.exists():                      # a replaced file keeps its mode
            mode = real.stat().st_mode & 0o7777
        else:
            umask = os.umask(0)
            os.umask(umask)
            mode = 0o666 & ~umask
        os.chmod(tmp, mode)
    except BaseException as e:
        Path(tmp).unlink(missing_ok=True)
        if isinstance(e, OSError):
            raise CliError(f"{flag} {shown}: cannot write ({e.strerror})") from None
        raise
    return tmp
