"""``genomatt gather``: concatenate the shard files of a sharded stage into one file."""

from __future__ import annotations

import argparse
import logging

log = logging.getLogger(__name__)


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "gather",
        help="concatenate the shard HDF5 files of one run into one",
        description="Concatenate the regions and per-region arrays of shard files written with --shard, in shard "
        "order; the result equals the file an unsharded run writes. Refuses a set with a shard missing or given "
        "twice, or with shards of different runs (seed, references, rule, model, regions file, shard count).",
    )
    parser.add_argument("--inputs", nargs="+", required=True, help="the shard files, in any order")
    parser.add_argument("--out", required=True, help="gathered HDF5 file")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> None:
    from genomatt.store import gather_stores

    gather_stores(args.inputs, args.out)
    log.info("gathered %d shards into %s", len(args.inputs), args.out)
