"""Faults for tests: a small, nearly full or read-only file system (tmpfs; needs root), a damaged HDF5 chunk."""

from __future__ import annotations

import contextlib
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import h5py
import pytest


@contextlib.contextmanager
def mounted_tmpfs(folder: Path, size: str = "1m", free: int | None = None, read_only: bool = False) -> Iterator[Path]:
    """Mount a tmpfs of ``size`` on ``folder``; fill it up to ``free`` bytes left, or mount it read-only.

    Skips the calling test unless it runs as root on a system where tmpfs can be mounted.
    """
    if os.geteuid() != 0:
        pytest.skip("mounting a small tmpfs needs root")
    folder.mkdir(parents=True, exist_ok=True)
    mount = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(folder)],
                           capture_output=True, text=True)
    if mount.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {mount.stderr.strip()}")
    try:
        if free is not None:
            _fill(folder / "filler", free)
        if read_only:
            subprocess.run(["mount", "-o", "remount,ro", str(folder)], check=True)
        yield folder
    finally:
        subprocess.run(["umount", "-l", str(folder)], check=True)


def _fill(path: Path, free: int) -> None:
    """Write ``path`` until the file system has ``free`` bytes left."""
    stats = os.statvfs(path.parent)
    size = stats.f_bavail * stats.f_frsize - free
    with open(path, "wb") as handle:
        handle.write(b"\0" * max(size, 0))


def entries(folder: Path) -> list[str]:
    """Every file under ``folder`` (relative paths), the filler excepted."""
    return sorted(str(path.relative_to(folder)) for path in folder.rglob("*")
                  if path.is_file() and path.name != "filler")


def damage_chunk(path, name, chunk=1):
    """Overwrite the middle of one stored chunk of dataset ``name`` with other bytes."""
    with h5py.File(path, "r") as handle:
        info = handle[name].id.get_chunk_info(chunk)
    with open(path, "r+b") as handle:
        handle.seek(info.byte_offset + info.size // 2)
        handle.write(b"\x00\xff" * 16)
