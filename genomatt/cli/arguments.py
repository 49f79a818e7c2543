"""Argument types shared by the subcommands."""

from __future__ import annotations

import argparse
import contextlib
import re
from collections.abc import Iterable, Iterator, Sequence
from typing import TYPE_CHECKING

from genomatt.errors import BedFormatError, GenomattError

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd


def positive_int(text: str) -> int:
    """Parse a command-line value that must be an integer of at least 1.

    Parameters
    ----------
    text : str
        The value as given on the command line.

    Returns
    -------
    int

    Raises
    ------
    ValueError
        If ``text`` is not an integer (argparse reports it as an invalid value).
    argparse.ArgumentTypeError
        If the integer is below 1.
    """
    return _int_at_least(text, 1)


def non_negative_int(text: str) -> int:
    """Parse a command-line value that must be an integer of at least 0 (a count that may be none).

    Raises
    ------
    ValueError
        If ``text`` is not an integer (argparse reports it as an invalid value).
    argparse.ArgumentTypeError
        If the integer is negative.
    """
    return _int_at_least(text, 0)


def _int_at_least(text: str, least: int) -> int:
    value = int(text)
    if value < least:
        raise argparse.ArgumentTypeError(f"must be at least {least}, got {value}")
    return value


# The largest seed every generator takes (torch.manual_seed's are signed 64-bit integers on some paths).
MAX_SEED = 2**63 - 1


def seed(text: str) -> int:
    """Parse a random seed: an integer from 0 to :data:`MAX_SEED`, as numpy's and torch's generators take.

    Raises
    ------
    ValueError
        If ``text`` is not an integer (argparse reports it as an invalid value).
    argparse.ArgumentTypeError
        If the integer is negative or larger than :data:`MAX_SEED`.
    """
    try:
        value = non_negative_int(text)
    except argparse.ArgumentTypeError as error:
        raise argparse.ArgumentTypeError(f"a seed {error}") from None
    if value > MAX_SEED:
        raise argparse.ArgumentTypeError(f"a seed must be at most {MAX_SEED} (2^63 - 1), got {value}")
    return value


@contextlib.contextmanager
def options_named(fields: Iterable[str]) -> Iterator[None]:
    """Name the options as typed (``--min-strength``) in the errors of settings built from them, which name their
    fields (``min_strength``)."""
    try:
        yield
    except GenomattError as error:
        message = str(error)
        for name in fields:
            message = re.sub(rf"\b{name}\b", "--" + name.replace("_", "-"), message)
        raise type(error)(message) from None


def add_device_argument(parser: argparse.ArgumentParser) -> None:
    """Add ``--device``; :func:`genomatt.cli.main.main` checks it (one line, exit 2) before the command runs.

    Parameters
    ----------
    parser : argparse.ArgumentParser
        The subcommand's parser.
    """
    parser.add_argument("--device", help="torch device: cpu, cuda, cuda:<index> or mps (default: the GPU when "
                        "there is one, else the CPU)")


def add_task_region_arguments(parser: argparse.ArgumentParser, action: str) -> None:
    """Add ``--task-regions`` and ``--labels-column``: restrict each task to the regions positive for it.

    Parameters
    ----------
    parser : argparse.ArgumentParser
        The subcommand's parser.
    action : str
        What the command does per task, for the help text (e.g. ``"scan"``).
    """
    parser.add_argument("--task-regions", nargs="+", metavar="BED",
                        help=f"{action} each task only in the regions positive for it (centre inside one of its "
                        "regions): one BED per task (task = file name), or one BED with --labels-column; "
                        "default: every region for every task")
    parser.add_argument("--labels-column",
                        help="with one --task-regions BED, the column naming each region's task: one of its first "
                             "six, by name (name = BED column 4, score, strand)")


def task_rows(args: argparse.Namespace, regions: pd.DataFrame, tasks: Sequence[str]) -> dict[str, np.ndarray] | None:
    """Rows of ``regions`` each task uses, from ``--task-regions``; None without it.

    See :func:`genomatt.task_regions.task_region_rows`. A task none of whose regions is in its task regions is
    skipped (it warns); if no task has any, the BEDs cannot be meant for these regions (e.g. ``1`` for ``chr1``),
    which is an error.
    """
    if not args.task_regions:
        return None
    from genomatt.task_regions import read_task_regions, task_region_rows

    rows = task_region_rows(regions, tasks, read_task_regions(args.task_regions, args.labels_column))
    if not any(len(rows[task]) for task in tasks):
        chroms = regions["chrom"].unique().tolist()
        raise BedFormatError(f"{', '.join(map(str, args.task_regions))}: no region of {args.contrib} lies in the task "
                             f"regions of tasks {list(tasks)} (a region's centre must lie in one); do the BEDs name "
                             f"the chromosomes as the regions do ({chroms[:5]})?")
    return rows
