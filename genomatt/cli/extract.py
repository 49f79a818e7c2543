"""``genomatt extract``: read fixed-width windows of regions from a FASTA into an HDF5 store."""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

from genomatt.fasta import FASTA_BACKENDS

log = logging.getLogger(__name__)


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "extract",
        help="one-hot encode fixed-width windows of BED regions into HDF5",
        description="Read BED/narrowPeak regions, centre a window on each summit or midpoint, read it from the "
        "FASTA (N-padded off chromosome ends) and write regions + one-hot (N, 4, L) to HDF5.",
    )
    parser.add_argument("--fasta", required=True, help="genome FASTA (indexed on first use)")
    parser.add_argument("--regions", required=True,
                        help="BED3/BED6/narrowPeak of the regions to explain, optionally gzipped")
    parser.add_argument("--width", type=int, required=True, help="window width in bp")
    parser.add_argument("--out", required=True, help="output HDF5 file")
    parser.add_argument("--backend", choices=FASTA_BACKENDS, default="pyfaidx",
                        help="library that reads the FASTA (pysam also reads bgzip-compressed FASTA; default "
                        "%(default)s)")
    parser.add_argument("--on-missing", choices=("error", "skip"), default="error",
                        help="regions on chromosomes absent from the FASTA or starting past a chromosome's end: "
                        "fail (default) or skip (with a count)")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> None:
    import numpy as np

    from genomatt.genome import further_summits, read_window_blocks, repeated_windows, report_n_windows, window_table
    from genomatt.store import writing_store

    regions = window_table(args.fasta, args.regions, args.width, backend=args.backend, on_missing=args.on_missing)
    repeated_windows(regions, args.regions)
    further_summits(regions, args.regions)
    skipped = regions.attrs.get("skipped")
    provenance = {
        "command": "extract", "fasta": str(Path(args.fasta).resolve()), "regions": str(Path(args.regions).resolve()),
        "width": args.width, "backend": args.backend,
        "skipped_regions": [] if skipped is None else skipped[["chrom", "start", "end", "name"]].values.tolist(),
    }
    # A block of windows at a time, so that memory does not grow with the regions (300,000 of 1 kb are 4.8 GB)
    # or their width; the regions table, whose N counts the reading completes, is written last.
    with writing_store(args.out, regions, {"onehot": ((4, args.width), np.float32)}, kind="regions",
                       provenance=provenance) as writer:
        for block in read_window_blocks(regions, args.fasta, args.backend, progress=not args.quiet):
            writer.write({"onehot": block})
    report_n_windows(regions)
    log.info("wrote %d regions of %d bp to %s", len(regions), args.width, args.out)
