"""``genomatt gather``: concatenate the shard files of a sharded stage into one file."""

from __future__ import annotations

import argparse
import logging

from genomatt.store import gather_stores

log = logging.getLogger(__name__)


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "gather",
        help="concatenate shard HDF5 files (in the order given) into one",
        description="Concatenate the regions and per-region arrays of shard files written with --shard, in the "
        "order given; the result equals the file an unsharded run writes.",
    )
    parser.add_argument("--inputs", nargs="+", required=True, help="shard files, in shard order")
    parser.add_argument("--out", required=True, help="gathered HDF5 file")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> None:
    gather_stores(args.inputs, args.out)
    log.info("gathered %d shards into %s", len(args.inputs), args.out)
