"""``genomatt report``: the self-contained HTML report of a run."""

from __future__ import annotations

import argparse
import logging

from genomatt.report import DEFAULT_EXAMPLE_REGIONS

log = logging.getLogger(__name__)


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "report",
        help="write the self-contained HTML report (run summary, settings, motifs, hits, example regions)",
        description="Write one HTML file, images and tables embedded, that opens offline: run summary (inputs, model "
        "and its test metrics, attribution settings, summation-to-delta error), the settings and thresholds of motif "
        "discovery and hit calling, motifs sorted by seqlet count with logos, known-motif matches (linked to JASPAR), "
        "hit statistics and strength, per-motif hit score and position distributions, motif co-occurrence, and "
        "example regions drawn around their strongest hits; motifs, hits and co-occurrence as downloadable TSV. "
        "Motif logos are also written as PNG and SVG to logos/ beside the report.",
    )
    parser.add_argument("--contrib", required=True, help="contributions (contrib.h5 from 'genomatt attribute')")
    parser.add_argument("--motifs", help="motifs.h5 from 'genomatt motifs'")
    parser.add_argument("--hits", help="hits.h5 from 'genomatt hits'")
    parser.add_argument("--metrics", help="JSON of the model's test metrics, e.g. {task: {auroc: ..., auprc: ...}}")
    parser.add_argument("--out", required=True, help="output HTML file")
    parser.add_argument("--example-regions", type=int, default=DEFAULT_EXAMPLE_REGIONS,
                        help=f"number of example regions drawn (default {DEFAULT_EXAMPLE_REGIONS})")
    parser.set_defaults(func=run)


def _check_same_run(args: argparse.Namespace) -> None:
    """Refuse motifs or hits made from another contribution file than ``--contrib``, or of tasks it lacks."""
    from genomatt.contributions import read_contributions
    from genomatt.inputs import check_in_regions
    from genomatt.motifs.hits import read_hits
    from genomatt.motifs.store import read_motifs

    contributions = read_contributions(args.contrib)
    regions = contributions.regions
    if args.hits:
        calls = read_hits(args.hits)
        check_in_regions(calls.qc, regions, args.hits, args.contrib, "peak_id", "chrom", "scanned region")
        check_in_regions(calls.hits, regions, args.hits, args.contrib, "peak_id", "chr", "hit")
        _check_tasks(calls.qc["task"], args.hits, "hits", contributions)
    if args.motifs:
        motifs, seqlets = read_motifs(args.motifs)[:2]
        check_in_regions(seqlets, regions, args.motifs, args.contrib, "region", "chrom", "seqlet")
        _check_tasks([motif.task for motif in motifs], args.motifs, "motifs", contributions)


def _check_tasks(tasks, path: str, what: str, contributions) -> None:
    """Refuse ``what`` (motifs, hits) of ``path`` whose tasks the contribution file does not hold."""
    from genomatt.errors import StoreError

    missing = sorted({str(task) for task in tasks} - set(contributions.tasks))
    if missing:
        raise StoreError(f"{path}: {what} of tasks {missing} that {contributions.path} does not hold (it holds "
                         f"{contributions.tasks}); give the files of one run")


def run(args: argparse.Namespace) -> None:
    from genomatt.report.html import build_report

    _check_same_run(args)
    build_report(args.contrib, args.out, motifs=args.motifs, hits=args.hits, metrics=args.metrics,
                 n_regions=args.example_regions)
