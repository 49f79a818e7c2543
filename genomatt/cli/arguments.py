"""Argument types shared by the subcommands."""

from __future__ import annotations

import argparse


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
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value
