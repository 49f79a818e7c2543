"""``genomatt hits``: call motif hits in the contributions of every region; write tables and tracks."""

from __future__ import annotations

import argparse
import dataclasses
import logging
from pathlib import Path
from typing import TYPE_CHECKING

from genomatt.cli.arguments import (add_device_argument, add_task_region_arguments, non_negative_int, options_named,
                                    positive_int, seed, task_rows)
from genomatt.motifs.hit_parameters import DEFAULT_BATCH_SIZE, HitParameters

if TYPE_CHECKING:
    from genomatt.contributions import Contributions

log = logging.getLogger(__name__)


def register(subparsers) -> None:
    defaults = HitParameters()
    parser = subparsers.add_parser(
        "hits",
        help="find motif instances in the contributions of every region (hits.tsv/.bed/.h5, bigWig)",
        description="Find every instance of each motif (discovered CWMs from motifs.h5, or MEME/JASPAR motifs) in "
        "the contributions of a contrib.h5, both strands, by greedy non-negative matching pursuit with an "
        "FDR-controlled importance threshold and a strength threshold relative to the task's strongest motif, "
        "one hit per site and motif. Writes hits.tsv (exactly Fi-NeMo's columns), hits_genomatt.tsv "
        "(task, amplitude, contribution of each hit), hits.bed, hits.h5, regions_qc.tsv and Fi-NeMo's motif_data.tsv, "
        "motif_cwms.npy and parameters.json (the folder reads as a Fi-NeMo call-hits output); with --fasta also one "
        "bigWig of per-base contributions per task.",
    )
    parser.add_argument("--contrib", required=True, help="contributions (contrib.h5 from 'genomatt attribute')")
    parser.add_argument("--motifs", required=True,
                        help="motifs.h5 from 'genomatt motifs', or a MEME or JASPAR-format motif file")
    parser.add_argument("--out-dir", required=True, help="output folder")
    parser.add_argument("--fasta", help="genome FASTA: also write contrib.<task>.bw (chromosome sizes from it)")
    parser.add_argument("--tracks-dir", help="folder of the contrib.<task>.bw tracks (default: --out-dir)")
    parser.add_argument("--tasks", nargs="+", help="tasks to scan (default: all)")
    add_task_region_arguments(parser, "scan")
    parser.add_argument("--min-similarity", type=float, default=defaults.min_similarity,
                        help="least cosine similarity of contributions and CWM (default %(default)s)")
    parser.add_argument("--energy-floor", type=float, default=defaults.energy_floor,
                        help="multiple of a background window's squared contribution added to each window's "
                        "squared norm in the similarity, as Fi-NeMo's eps; 0: plain cosine (default %(default)s)")
    parser.add_argument("--min-strength", type=float, default=defaults.min_strength,
                        help="least hit amplitude (hit_amplitude), as a fraction of the task's strongest motif's "
                        "amplitude at its typical sites (default %(default)s)")
    parser.add_argument("--fdr", type=float, default=defaults.fdr,
                        help="false discovery rate setting the importance thresholds (default %(default)s)")
    parser.add_argument("--trim-threshold", type=float, default=defaults.trim_threshold,
                        help="CWM trimming, fraction of the largest position (default %(default)s)")
    parser.add_argument("--min-sequence-quantile", type=float, default=defaults.min_sequence_quantile,
                        help="least log-odds score of a hit's sequence under the motif's PWM, as a quantile of the "
                        "scores of sequences drawn from that PWM; 0: no sequence check (default %(default)s)")
    parser.add_argument("--min-task-share", type=float, default=defaults.min_task_share,
                        help="drop a hit whose site drives its own task less than this fraction of the task it "
                        "drives most, each task on the scale of its strongest motif's hits or, where larger, of its "
                        "typical strongest sites; 0: keep all (default %(default)s)")
    parser.add_argument("--include", nargs="+", metavar="PATTERN",
                        help="scan only the motifs whose names match one of these shell patterns (e.g. 'GATA1.*')")
    parser.add_argument("--exclude", nargs="+", metavar="PATTERN",
                        help="do not scan the motifs whose names match one of these shell patterns")
    parser.add_argument("--min-seqlets", type=non_negative_int, default=0,
                        help="do not scan discovered motifs built from fewer seqlets (default 0)")
    parser.add_argument("--hit-contrib", action=argparse.BooleanOptionalAction, default=True,
                        help="scan the file's /hit_contrib where it has them (contributions under another max rule, "
                        "'genomatt attribute --hit-max-rule'); --no-hit-contrib scans /contrib, the contributions "
                        "motifs were discovered in (default: --hit-contrib)")
    parser.add_argument("--batch-size", type=positive_int, default=DEFAULT_BATCH_SIZE,
                        help="regions per batch (default %(default)s)")
    add_device_argument(parser)
    parser.add_argument("--seed", type=seed, default=defaults.seed, help="seed of the permutation null")
    parser.set_defaults(func=run)


def _check_tracks(args: argparse.Namespace, contributions: Contributions) -> None:
    """Refuse a FASTA the regions do not lie on, or tasks whose track file names clash, before any hit is called.

    Every region must lie on a chromosome of the FASTA within its length (a window padded with N off a
    chromosome end counts by its bases read from the genome).
    """
    from genomatt.fasta import read_chrom_sizes
    from genomatt.tracks import check_regions_on_chromosomes, contribution_track_paths

    check_regions_on_chromosomes(contributions.regions, read_chrom_sizes(args.fasta), args.fasta, args.contrib)
    contribution_track_paths(args.tasks or contributions.tasks, args.tracks_dir or args.out_dir)


def run(args: argparse.Namespace) -> None:
    from genomatt.atomic import safe_file_names, warn_of_earlier_files
    from genomatt.contributions import read_contributions
    from genomatt.motifs.cwm_motifs import read_cwm_motifs, select_motifs
    from genomatt.motifs.hits import call_hits_in_store, write_hits
    from genomatt.tracks import write_contribution_bigwigs

    names = [field.name for field in dataclasses.fields(HitParameters)]
    with options_named(names):
        parameters = HitParameters(**{name: getattr(args, name) for name in names})
    contributions = read_contributions(args.contrib)
    contributions.check_tasks(args.tasks)
    if args.fasta:
        _check_tracks(args, contributions)
    given = read_cwm_motifs(args.motifs)
    # The report draws each motif's logos under its file-safe name.
    safe_file_names([motif.name for motif in given], "motifs")
    motifs = select_motifs(given, args.include, args.exclude, args.min_seqlets)
    if not motifs:
        log.warning("%s: %s; writing empty hit tables", args.motifs, "no motif is left by --include, --exclude and "
                    "--min-seqlets" if given else "it holds no motifs")
    elif args.tasks and not any(motif.task is None or motif.task in args.tasks for motif in motifs):
        log.warning("%s: no motif of tasks %s (its motifs are of tasks %s); writing empty hit tables", args.motifs,
                    args.tasks, sorted({motif.task for motif in motifs}))
    rows = task_rows(args, contributions.regions, args.tasks or contributions.tasks)
    calls = call_hits_in_store(args.contrib, motifs, parameters, tasks=args.tasks, task_rows=rows,
                               batch_size=args.batch_size, device=args.device, hit_contrib=args.hit_contrib,
                               progress=not args.quiet)
    provenance = {"command": "hits", "contrib": str(Path(args.contrib).resolve()),
                  "motifs": str(Path(args.motifs).resolve()), "tasks": args.tasks,
                  "task_regions": [str(Path(path).resolve()) for path in args.task_regions or []],
                  "include": args.include, "exclude": args.exclude, "min_seqlets": args.min_seqlets,
                  "contrib_provenance": contributions.provenance}
    paths = write_hits(calls, args.out_dir, provenance)
    log.info("wrote %d hits to %s", len(calls.hits), paths["tsv"])
    if args.fasta:
        tracks = write_contribution_bigwigs(args.contrib, args.fasta, args.tracks_dir or args.out_dir, args.tasks)
        for task, path in tracks.items():
            log.info("wrote contributions of task %s to %s", task, path)
        warn_of_earlier_files(args.tracks_dir or args.out_dir, "contrib.*.bw", tracks.values())
