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
    from genomatt.genome import further_summits, load_regions, repeated_windows
    from genomatt.store import write_store

    regions, onehot = load_regions(args.fasta, args.regions, args.width, backend=args.backend,
                                   on_missing=args.on_missing, progress=not args.quiet)
    repeated_windows(regions, args.regions)
    further_summits(regions, args.regions)
    skipped = regions.attrs.get("skipped")
    provenance = {
        "command": "extract", "fasta": str(Path(args.fasta).resolve()), "regions": str(Path(args.regions).resolve()),
        "width": args.width, "backend": args.backend,
        "skipped_regions": [] if skipped is None else skipped[["chrom", "start", "end", "name"]].values.tolist(),
    }
    write_store(args.out, regions, {"onehot": onehot}, kind="regions", provenance=provenance)
    log.info("wrote %d regions of %d bp to %s", len(regions), args.width, args.out)
