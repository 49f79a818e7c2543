"""Atomic writes: every output is written to a temporary file beside it and renamed when complete.

A write that fails (disk full, I/O error, no permission) becomes one :class:`~genomatt.errors.OutputError`
naming the file; its temporary file is removed and nothing appears under the final name. Temporary
files left by a killed write (``.<name>.XXXXXXXX.tmp``) are removed by the next write of the same
output. Within :func:`command_outputs` (each ``genomatt`` command runs inside one), a failure anywhere
in the command also removes the outputs it had already completed and puts back the earlier file each
replaced (kept meanwhile as ``.<name>.previous``), so a failed command leaves its folders as it found them.
"""

from __future__ import annotations

import contextlib
import contextvars
import glob
import io
import logging
import os
import re
import tempfile
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from genomatt.errors import OutputError

if TYPE_CHECKING:
    import h5py

log = logging.getLogger(__name__)

_TEMPORARY_PATTERN = ".{name}.????????.tmp"
# Characters a name keeps in a file name; each run of others becomes "_".
_FILE_NAME_UNSAFE = re.compile(r"[^A-Za-z0-9_.-]+")
_completed: contextvars.ContextVar[list[Path] | None] = contextvars.ContextVar("completed_outputs", default=None)
# Folders the current command_outputs block made for its outputs, removed again (when empty) if it fails.
_made_folders: contextvars.ContextVar[list[Path] | None] = contextvars.ContextVar("made_folders", default=None)
# The input files of the command running in the current command_outputs block, which no output may replace.
_inputs: contextvars.ContextVar[frozenset[Path]] = contextvars.ContextVar("command_inputs", default=frozenset())
# The earlier version of each output the current command_outputs block replaced, kept (hard-linked beside it
# as .<name>.previous) until the block ends: put back if the block fails, so that a failed command leaves the
# complete files of an earlier run as they were.
_previous: contextvars.ContextVar[dict[Path, Path] | None] = contextvars.ContextVar("previous_versions",
                                                                                    default=None)
_PREVIOUS_NAME = ".{name}.previous"
# Temporary files atomic_path is writing now, for abandon_outputs.
_writing: set[Path] = set()
# The guarded file and final path of each HDF5 file open in atomic_hdf5, by id of its h5py.File.
_open_hdf5: dict[int, tuple[_GuardedFile, Path]] = {}


def safe_file_name(name: str) -> str:
    """A task or motif name as it appears in file names: each run of characters other than ``A-Za-z0-9_.-``
    becomes ``_``, and so does each leading dot.

    ``AP-1/JUN`` → ``AP-1_JUN``, ``../x`` → ``___x``: no separator is left, so a file named after a task or
    motif stays in its folder, and no name starts with a dot, so none is hidden (``..``, a folder's parent,
    becomes ``__``). The rule of every file or folder named after one (``modisco/<task>.h5``,
    ``contrib.<task>.bw``, ``--export-dir`` folders, ``logos/<motif>.*``).
    """
    safe = _FILE_NAME_UNSAFE.sub("_", name)
    dots = len(safe) - len(safe.lstrip("."))
    return "_" * dots + safe[dots:] or "_"


def safe_file_names(names: Sequence[str], what: str = "tasks") -> dict[str, str]:
    """Each name's :func:`safe_file_name`, refusing two names that would share a file.

    Parameters
    ----------
    names
        Task or motif names.
    what
        What they name (``"tasks"``, ``"motifs"``), for the message.

    Returns
    -------
    dict
        Name → file name, in the order given.

    Raises
    ------
    OutputError
        If two names give one file name (``AP-1/JUN`` and ``AP-1_JUN``), before anything is written.
    """
    owners: dict[str, str] = {}
    for name in names:
        safe = safe_file_name(name)
        if safe in owners and owners[safe] != name:
            raise OutputError(f"{what} {owners[safe]!r} and {name!r} would both be written as {safe!r} (in file "
                              "names each run of characters other than A-Z a-z 0-9 _ . - becomes _, and so does a "
                              "leading dot); rename one")
        owners[safe] = name
    return {name: safe for safe, name in owners.items()}


def write_failure(path: str | os.PathLike, error: OSError) -> OutputError:
    """The one-line error of a failed write of ``path``: a file where a folder of its path must be is named."""
    if isinstance(error, (FileExistsError, NotADirectoryError)):
        blocking = next((folder for folder in reversed([Path(path), *Path(path).parents])
                         if folder.exists() and not folder.is_dir()), None)
        if blocking is not None:
            return OutputError(f"{path}: cannot write: {blocking} is a file, where a folder is needed; give another "
                               "path, or move the file; nothing was written under this name")
    reason = error.strerror or str(error).splitlines()[0]
    return OutputError(f"{path}: cannot write ({reason}); nothing was written under this name")


def check_writable(path: str | os.PathLike, folder: bool = False) -> None:
    """Fail now, naming ``path``, where it could not be written when a long command ends: its folder cannot be
    made, or nothing can be written in it. Folders made for the test are removed again.

    Parameters
    ----------
    path
        An output file, or with ``folder`` an output folder.
    folder
        ``path`` is the folder the outputs go in.
    """
    target = Path(path) if folder else Path(path).parent
    created = _missing_folders(target)
    try:
        target.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=target):
            pass
    except OSError as error:
        raise write_failure(path, error) from None
    finally:
        _remove_empty_folders(created)


def remove_stale_temporaries(path: str | os.PathLike) -> list[Path]:
    """Remove the temporary files a killed write of ``path`` left beside it, and an earlier version of it kept by a
    killed command (``.<name>.previous``, not one the running command keeps); return them."""
    final = Path(path)
    pattern = _TEMPORARY_PATTERN.format(name=glob.escape(final.name))
    # An earlier version kept by a command that was killed before it ended; not one the running command keeps.
    previous = final.with_name(_PREVIOUS_NAME.format(name=final.name))
    kept = set((_previous.get() or {}).values())
    removed = []
    for stale in [*final.parent.glob(pattern), *([previous] if previous.exists() and previous not in kept else [])]:
        with contextlib.suppress(FileNotFoundError):
            stale.unlink()
            removed.append(stale)
    return removed


def _missing_folders(folder: Path) -> list[Path]:
    """``folder`` and those of its parents that do not exist yet, deepest first: the folders making it creates."""
    return [parent for parent in (folder, *folder.parents) if not parent.exists()]


def _remove_empty_folders(folders: list[Path]) -> None:
    """Remove ``folders`` (deepest first) that are still empty; a folder something else wrote into stays."""
    for folder in folders:
        try:
            folder.rmdir()
        except OSError:
            return


def check_not_inputs(paths: Iterable[str | os.PathLike]) -> None:
    """Raise :class:`OutputError` if one of the output ``paths`` is an input of the running command (see
    :func:`command_outputs`): writing it would replace that input. Commands call it with the outputs they will
    write into a folder before their long work; :func:`atomic_path` calls it at each write."""
    inputs = _inputs.get()
    for path in paths:
        if Path(path).resolve() in inputs:
            raise OutputError(f"{path}: is also an input of this command, which writing it would replace; nothing "
                              "was written under this name (choose another output file or folder)")


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike, rollback: bool = True) -> Iterator[Path]:
    """Yield a temporary path in the destination folder; rename it onto ``path`` on success.

    If the body raises, the temporary file is removed and ``path`` is left untouched, so a killed
    or failed step never leaves a partial file that looks complete; folders created for ``path`` are
    removed again while empty. An ``OSError`` while writing or
    renaming (disk full, I/O error, permission) is raised as one :class:`OutputError` naming ``path``.

    Parameters
    ----------
    path
        Final destination. Its parent folder is created if needed.
    rollback
        Remove ``path`` again if the :func:`command_outputs` block it was written in fails; ``False``
        for files that are not the command's outputs (e.g. an index of an input).

    Yields
    ------
    pathlib.Path
        Temporary path to write to (it does not exist yet).
    """
    final = Path(path)
    check_not_inputs([final])
    # Folders this write creates, deepest first: removed again (when still empty) if the write fails.
    created = _missing_folders(final.parent)
    try:
        final.parent.mkdir(parents=True, exist_ok=True)
        remove_stale_temporaries(final)
        fd, tmp_name = tempfile.mkstemp(prefix=f".{final.name}.", suffix=".tmp", dir=final.parent)
        os.close(fd)
    except OSError as error:
        raise write_failure(final, error) from None
    tmp = Path(tmp_name)
    tmp.unlink()
    _writing.add(tmp)
    try:
        yield tmp
        if rollback:
            _keep_previous(final)
        os.replace(tmp, final)
    except OSError as error:
        raise write_failure(final, error) from None
    finally:
        _writing.discard(tmp)
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
        if not final.exists():
            _remove_empty_folders(created)
    completed = _completed.get()
    if rollback and completed is not None:
        completed.append(final)
        _made_folders.get().extend(created)


def _keep_previous(final: Path) -> None:
    """Keep the file ``final`` holds now, if any, until the current :func:`command_outputs` block ends."""
    previous = _previous.get()
    # Not a file this command wrote itself (an output written twice): a failure removes that.
    if previous is None or final in previous or final in (_completed.get() or []) or not final.is_file():
        return
    backup = final.with_name(_PREVIOUS_NAME.format(name=final.name))
    with contextlib.suppress(FileNotFoundError):
        backup.unlink()
    try:
        os.link(final, backup)
    except OSError:
        log.debug("%s: no hard link for its earlier version; a failure of this command removes it", final)
        return
    previous[final] = backup


def _roll_back(completed: list[Path], previous: dict[Path, Path]) -> None:
    """Remove the outputs ``completed``, and put back every earlier version kept (also of an output whose
    write failed or was stopped between its rename and its record as completed)."""
    for path in dict.fromkeys(completed):
        if path not in previous:
            with contextlib.suppress(OSError):
                path.unlink()
    for path, backup in list(previous.items()):
        with contextlib.suppress(OSError):
            os.replace(backup, path)
            # Onto its own hard link (the output never replaced) a rename does nothing: the link is left.
            backup.unlink(missing_ok=True)
        del previous[path]


def warn_of_earlier_files(folder: str | os.PathLike, pattern: str, written: Iterable[str | os.PathLike]) -> list[Path]:
    """Warn about files of ``folder`` matching ``pattern`` that this command did not write: an earlier run's
    (other tasks' modisco files or tracks), which would be read as this run's. They are kept.

    Returns
    -------
    list of pathlib.Path
        Those files, sorted.
    """
    written = {Path(path).resolve() for path in written}
    earlier = sorted(path for path in Path(folder).glob(pattern) if path.resolve() not in written)
    if earlier:
        shown = ", ".join(path.name for path in earlier[:5]) + (", ..." if len(earlier) > 5 else "")
        log.warning("%s holds %d files of this kind that this run did not write (%s): an earlier run's, kept; remove "
                    "them, or write each run to its own folder", folder, len(earlier), shown)
    return earlier


def make_output_folder(folder: str | os.PathLike) -> Path:
    """Make an output folder (and its parents); a failure of the :func:`command_outputs` block removes the
    folders made here again while they are empty.

    Raises
    ------
    OutputError
        If the folder cannot be made.
    """
    folder = Path(folder)
    created = _missing_folders(folder)
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise write_failure(folder, error) from None
    made = _made_folders.get()
    if made is not None:
        made.extend(created)
    return folder


class _GuardedFile:
    """A file for h5py's file-object driver that never reports a write failure to HDF5.

    The HDF5 library cannot recover from a failed write: closing the file then fails too and h5py
    can crash the interpreter. On the first failure the file moves to memory instead (what was
    written so far, then every later write), so the library always sees a consistent file; the
    failure is kept in :attr:`error` and raised once the library has closed the file.
    """

    def __init__(self, path: Path):
        self._file: io.RawIOBase | io.BytesIO = open(path, "w+b", buffering=0)
        self.error: OSError | None = None

    def _move_to_memory(self, error: OSError) -> None:
        self.error = error
        disk, position = self._file, self._file.tell()
        disk.seek(0)
        self._file = io.BytesIO(disk.read())
        self._file.seek(position)
        with contextlib.suppress(OSError):
            disk.truncate(0)
            disk.close()

    def write(self, data) -> int:
        view = memoryview(data).cast("B")
        size = view.nbytes
        try:
            while view.nbytes:
                view = view[self._file.write(view):]
        except OSError as error:
            self._move_to_memory(error)
            self._file.write(view)
        return size

    def truncate(self, size: int | None = None) -> int:
        try:
            return self._file.truncate(size)
        except OSError as error:
            self._move_to_memory(error)
            return self._file.truncate(size)

    def read(self, size: int = -1) -> bytes:
        return self._file.read(size)

    def readinto(self, buffer) -> int:
        return self._file.readinto(buffer)

    def seek(self, offset: int, whence: int = os.SEEK_SET) -> int:
        return self._file.seek(offset, whence)

    def tell(self) -> int:
        return self._file.tell()

    def flush(self) -> None:
        """Nothing is buffered: every write goes to the operating system at once."""

    def close(self) -> None:
        try:
            self._file.close()
        except OSError as error:
            self.error = self.error or error


@contextlib.contextmanager
def atomic_hdf5(path: str | os.PathLike) -> Iterator[h5py.File]:
    """Yield a new HDF5 file open for writing that appears under ``path`` only when complete.

    As :func:`atomic_path`, and safe on a full disk: a failed write is one :class:`OutputError`
    naming ``path``, never an HDF5 crash.

    Parameters
    ----------
    path
        Final ``.h5`` file.

    Yields
    ------
    h5py.File
        The file, open for writing.
    """
    # Imported here so that modules writing only text files (and the command line) load without h5py.
    import h5py

    with atomic_path(path) as tmp:
        guarded = _GuardedFile(tmp)
        try:
            with h5py.File(guarded, "w") as handle:
                _open_hdf5[id(handle)] = (guarded, Path(path))
                try:
                    yield handle
                finally:
                    del _open_hdf5[id(handle)]
        finally:
            guarded.close()
        if guarded.error is not None:
            raise guarded.error


def check_hdf5_writes(handle: h5py.File) -> None:
    """Raise now if a write to ``handle``, a file open in :func:`atomic_hdf5`, has failed (e.g. a full disk).

    A failed write is otherwise raised when the file closes, and what is written until then is held in
    memory; a long write calls this after each block so that it stops at the first block that did not fit.

    Raises
    ------
    OutputError
        Naming the final file; nothing is left under its name.
    """
    handle.flush()
    guarded, path = _open_hdf5[id(handle)]
    if guarded.error is not None:
        raise write_failure(path, guarded.error)


@contextlib.contextmanager
def command_outputs(inputs: Iterable[str | os.PathLike] = ()) -> Iterator[list[Path]]:
    """Remove every output completed inside the block, and the folders made for them while empty, if the block
    fails, putting back the earlier version of each output it replaced; refuse to write over ``inputs``.

    Parameters
    ----------
    inputs
        The command's input files: :func:`atomic_path` raises :class:`OutputError` for any of them (an
        output folder holding an input under an output's name) instead of replacing it.

    Yields
    ------
    list of pathlib.Path
        The outputs completed so far, in order.
    """
    completed: list[Path] = []
    made: list[Path] = []
    previous: dict[Path, Path] = {}
    tokens = (_completed.set(completed), _made_folders.set(made),
              _inputs.set(frozenset(Path(path).resolve() for path in inputs)), _previous.set(previous))
    try:
        yield completed
    except BaseException:
        _roll_back(completed, previous)
        for folder in sorted(set(made), key=lambda path: len(path.parts), reverse=True):
            with contextlib.suppress(OSError):
                folder.rmdir()  # only while empty
        raise
    else:
        for backup in previous.values():
            with contextlib.suppress(FileNotFoundError):
                backup.unlink()
    finally:
        for variable, token in zip((_completed, _made_folders, _inputs, _previous), tokens):
            variable.reset(token)


def abandon_outputs() -> None:
    """Remove every temporary file being written and the outputs completed in the current
    :func:`command_outputs` block (putting back the earlier versions they replaced), for a process that ends
    without unwinding (stopped by SIGTERM)."""
    for path in list(_writing):
        with contextlib.suppress(OSError):
            path.unlink()
    _roll_back(_completed.get() or [], _previous.get() or {})
