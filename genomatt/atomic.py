"""Atomic writes: every output is written to a temporary file beside it and renamed when complete."""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path in the destination folder; rename it onto ``path`` on success.

    If the body raises, the temporary file is removed and ``path`` is left untouched, so a killed
    or failed step never leaves a partial file that looks complete.

    Parameters
    ----------
    path
        Final destination. Its parent folder is created if needed.

    Yields
    ------
    pathlib.Path
        Temporary path to write to (it does not exist yet).
    """
    final = Path(path)
    final.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{final.name}.", suffix=".tmp", dir=final.parent)
    os.close(fd)
    tmp = Path(tmp_name)
    tmp.unlink()
    try:
        yield tmp
        os.replace(tmp, final)
    finally:
        if tmp.exists():
            tmp.unlink()
