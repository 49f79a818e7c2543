"""Entry point of the ``genomatt`` command.

Each stage lives in its own module under ``genomatt.cli`` exposing ``register(subparsers)``, which adds
the subcommand and sets ``func`` (a callable taking the parsed arguments) as its default. A subcommand
module imports only what its options need at its top and its heavy dependencies (torch, numba, pandas,
h5py, ...) inside its ``run``, so that building the parser, ``--help`` and argument errors take a
fraction of a second.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import logging
import os
import signal
import sys
import threading
import traceback
from collections.abc import Callable, Iterator
from pathlib import Path

from genomatt import __version__
from genomatt.atomic import abandon_outputs, check_writable, command_outputs
from genomatt.errors import ConfigError, GenomattError, OutputError

# Subcommand modules, in the order of the pipeline.
SUBCOMMAND_MODULES = [
    "genomatt.cli.simulate",
    "genomatt.cli.check",
    "genomatt.cli.extract",
    "genomatt.cli.train",
    "genomatt.cli.attribute",
    "genomatt.cli.evaluate",
    "genomatt.cli.gather",
    "genomatt.cli.motifs",
    "genomatt.cli.hits",
    "genomatt.cli.report",
]


def build_parser() -> argparse.ArgumentParser:
    """Build the argument parser with every registered subcommand."""
    parser = argparse.ArgumentParser(
        prog="genomatt",
        description="Explain what a DNA sequence model has learned: DeepLIFT contributions, "
        "seqlets, motifs and motif hits.",
        allow_abbrev=False,
    )
    parser.add_argument("--version", action="version", version=f"genomatt {__version__}")
    _add_global_options(parser, default=False)
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for module_name in SUBCOMMAND_MODULES:
        importlib.import_module(module_name).register(subparsers)
    for subparser in subparsers.choices.values():
        # Given after the subcommand too; SUPPRESS keeps a value given before it.
        _add_global_options(subparser, default=argparse.SUPPRESS)
        # An option is its whole name: `--regions` must not pass for `--regions-h5`, nor `--out` for `--out-dir`.
        subparser.allow_abbrev = False
    return parser


def _add_global_options(parser: argparse.ArgumentParser, default: object) -> None:
    parser.add_argument("--debug", action="store_true", default=default, help="show full tracebacks on errors")
    parser.add_argument("-q", "--quiet", action="store_true", default=default,
                        help="log warnings and errors only, and show no progress bars")


def _stop_on_sigterm(command: str) -> Callable[[int, object], None]:
    """A SIGTERM handler that removes what ``command`` was writing and has written, then ends the process.

    Raising from the handler would not do: the signal may arrive inside a callback from C (numba's
    compiler, a ctypes hook) that swallows the exception, and the command would run on. A child process
    forked by the command (tfmodisco-lite's workers) ends as on a plain SIGTERM, leaving the files to it.
    """
    owner = os.getpid()

    def stop(signum: int, frame: object) -> None:
        if os.getpid() != owner:
            signal.signal(signum, signal.SIG_DFL)
            os.kill(os.getpid(), signum)
            return
        abandon_outputs()
        print(f"genomatt {command}: terminated (SIGTERM); the outputs it was writing were removed (earlier versions "
              "put back)",
              file=sys.stderr, flush=True)
        os._exit(128 + signum)

    return stop


@contextlib.contextmanager
def _sigterm_removes_outputs(command: str) -> Iterator[None]:
    """While the command runs, SIGTERM (a cancelled cluster job, Snakemake stopping its jobs) removes its
    outputs and temporary files and exits with status 143, as a failure does; the previous handler after."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGTERM, _stop_on_sigterm(command))
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def main(argv: list[str] | None = None) -> int:
    """Run the ``genomatt`` command; return the process exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.WARNING if args.quiet else logging.INFO,
        format="%(asctime)s genomatt %(levelname)s: %(message)s",
        datefmt="%H:%M:%S",
    )
    if args.command is None:
        parser.print_help()
        return 2
    try:
        # Every command with --device fails here, before reading any input, when the device does not exist.
        if getattr(args, "device", None) is not None:
            from genomatt.device import resolve_device

            args.device = resolve_device(args.device)
        if getattr(args, "labels_column", None) and not getattr(args, "task_regions", None):
            raise ConfigError("--labels-column names the task column of a --task-regions BED, and none is given")
        inputs = _input_files(args)
        _check_outputs_writable(args, inputs)
        with _sigterm_removes_outputs(args.command), command_outputs(inputs.values()):
            args.func(args)
    except (GenomattError, OSError) as error:
        # An OSError that no module turned into a GenomattError is still the environment's (a file
        # that cannot be read or written), never a bug to show as a traceback.
        if args.debug:
            traceback.print_exc()
        message = " ".join(str(error).split())
        print(f"genomatt {args.command}: error: {message}", file=sys.stderr)
        return 2
    except Exception as error:
        # Ctrl-C inside a library's callback (h5py writing through a Python file object) comes out as the
        # library's own error, raised while handling the interrupt.
        if not _raised_by_interrupt(error):
            raise
        return _interrupted(args)
    except KeyboardInterrupt:
        return _interrupted(args)
    return 0


# The arguments naming each command's output files and folders, checked before the command works.
_OUTPUT_FILES = {"attribute": ("out",), "check": ("out",), "extract": ("out",), "gather": ("out",),
                 "motifs": ("out",), "report": ("out",), "train": ("out", "metrics")}
_OUTPUT_FOLDERS = {"attribute": ("export_dir",), "evaluate": ("out_dir",), "hits": ("out_dir", "tracks_dir"),
                   "simulate": ("out_dir",)}


def _input_files(args: argparse.Namespace) -> dict[str, Path]:
    """The existing files the command's other arguments name (a path or a list of paths), by option."""
    outputs = {*_OUTPUT_FILES.get(args.command, ()), *_OUTPUT_FOLDERS.get(args.command, ())}
    files = {}
    for name, value in vars(args).items():
        values = value if isinstance(value, (list, tuple)) else [value]
        if name in outputs or not all(isinstance(item, (str, os.PathLike)) for item in values):
            continue
        for item in values:
            with contextlib.suppress(OSError, ValueError):
                if Path(item).is_file():
                    files[f"--{name.replace('_', '-')} {item}"] = Path(item).resolve()
    return files


def _check_outputs_writable(args: argparse.Namespace, inputs: dict[str, Path]) -> None:
    """Refuse, before hours of work, outputs that could not be written at the end (a read-only folder) or that
    would replace one of the command's ``inputs``."""
    for name in _OUTPUT_FILES.get(args.command, ()):
        if getattr(args, name, None):
            path = getattr(args, name)
            replaced = [option for option, file in inputs.items() if file == Path(path).resolve()]
            if replaced:
                raise OutputError(f"--{name.replace('_', '-')} {path} is also the input {replaced[0]}: writing it "
                                  "would replace that input; choose another output path")
            check_writable(path)
    for name in _OUTPUT_FOLDERS.get(args.command, ()):
        if getattr(args, name, None):
            check_writable(getattr(args, name), folder=True)


def _raised_by_interrupt(error: BaseException) -> bool:
    """Whether a KeyboardInterrupt is among the errors that ``error`` was raised from or while handling."""
    seen = set()
    while error is not None and id(error) not in seen:
        if isinstance(error, KeyboardInterrupt):
            return True
        seen.add(id(error))
        error = error.__cause__ or error.__context__
    return False


def _interrupted(args: argparse.Namespace) -> int:
    """Ctrl-C: the outputs were removed on the way out, as on any failure."""
    if args.debug:
        traceback.print_exc()
    print(f"genomatt {args.command}: interrupted; its outputs were removed (earlier versions put back)",
          file=sys.stderr)
    return 130


if __name__ == "__main__":
    sys.exit(main())
