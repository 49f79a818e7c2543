"""``genomatt motifs``: seqlets, de novo motifs (tfmodisco-lite) and their known-motif matches (TOMTOM)."""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

from genomatt.cli.arguments import add_task_region_arguments, options_named, positive_int, seed, task_rows
from genomatt.errors import OutputError
from genomatt.motifs.discovery_settings import DiscoverySettings
from genomatt.motifs.jaspar import DEFAULT_RELEASE

log = logging.getLogger(__name__)


def register(subparsers) -> None:
    defaults = DiscoverySettings()
    parser = subparsers.add_parser(
        "motifs",
        help="call seqlets, discover motifs with tfmodisco-lite and match them to JASPAR or a MEME file",
        description="Read contributions (contrib.h5), call seqlets against a null per task and sign, discover "
        "motifs per task with tfmodisco-lite, match them to known motifs with TOMTOM, and write motifs.h5. "
        "Beside it: seqlets.bed (motif seqlets), called_seqlets.bed, matches.tsv, motifs.meme (trimmed motifs) "
        "and modisco/<task>.h5 (tfmodisco-lite schema).",
    )
    parser.add_argument("--contrib", required=True, help="contribution file from genomatt attribute")
    parser.add_argument("--out", required=True, help="output motifs.h5; the other outputs go in its folder")
    parser.add_argument("--meme", help="MEME or JASPAR-format file of known motifs to match against instead of "
                        "the JASPAR collection")
    parser.add_argument("--jaspar-release", default=DEFAULT_RELEASE, help="JASPAR release (default %(default)s)")
    parser.add_argument("--jaspar-collection", default="CORE", help="JASPAR collection (default %(default)s)")
    parser.add_argument("--jaspar-tax-group", default="vertebrates",
                        help="JASPAR taxonomic group, or 'all' for every taxon (default %(default)s)")
    parser.add_argument("--top-matches", type=positive_int, default=3,
                        help="known-motif matches kept per motif, best first (rows of matches.tsv; default "
                        "%(default)s)")
    add_task_region_arguments(parser, "discover the motifs of")
    parser.add_argument("--window", type=int, help="bp centred in each region used for discovery (default: all)")
    parser.add_argument("--max-seqlets", type=positive_int, default=defaults.max_seqlets,
                        help="seqlets of each sign clustered per task, from randomly ordered regions "
                        "(default %(default)s)")
    parser.add_argument("--min-strength", type=float, default=defaults.min_strength,
                        help="drop patterns whose average seqlet contributes less than this fraction of the task's "
                        "strongest motif's (default %(default)s)")
    parser.add_argument("--min-purity", type=float, default=defaults.min_purity,
                        help="drop motifs whose seqlets drive their own task less than this fraction of the task they "
                        "drive most (other tasks' motifs), and such seqlets from the motifs kept (0 keeps all; "
                        "default %(default)s)")
    parser.add_argument("--min-seqlet-share", type=float, default=defaults.min_seqlet_share,
                        help="drop a motif's seqlets whose core contributes less than this fraction of its median "
                        "seqlet's, and rebuild the motif from the others (0 keeps all; default %(default)s)")
    parser.add_argument("--seed", type=seed, default=defaults.seed,
                        help="seed of the region order (default %(default)s)")
    parser.add_argument("--threads", type=positive_int, default=1, help="threads for numba and BLAS (default 1)")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> None:
    import pandas as pd

    from genomatt.contributions import read_contributions
    from genomatt.motifs.discovery import resolve_window
    from genomatt.motifs.formats import write_meme
    from genomatt.motifs.matching import load_database, match_motifs, write_matches_tsv
    from genomatt.motifs.seqlets import write_bed
    from genomatt.motifs.store import write_modisco_h5, write_motifs
    from genomatt.motifs.task_discovery import discover_task_motifs
    from genomatt.atomic import check_not_inputs, safe_file_names, warn_of_earlier_files
    from genomatt.task_regions import check_task_names

    info = read_contributions(args.contrib)
    # A task's name becomes its motifs' MEME IDs, written after the long discovery: refuse an unfit one now.
    check_task_names(info.tasks, f"{args.contrib} (its tasks)")
    window_start, window = resolve_window(args.window, info.length)
    # Read before the long discovery, so that a bad MEME file or JASPAR request fails at once.
    tax_group = None if args.jaspar_tax_group == "all" else args.jaspar_tax_group
    database = load_database(args.meme, args.jaspar_release, args.jaspar_collection, tax_group)
    rows_of = task_rows(args, info.regions, info.tasks)
    with options_named(["max_seqlets", "seed", "threads", "min_strength", "min_purity", "min_seqlet_share"]):
        settings = DiscoverySettings(max_seqlets=args.max_seqlets, seed=args.seed, threads=args.threads,
                                     min_strength=args.min_strength, min_purity=args.min_purity,
                                     min_seqlet_share=args.min_seqlet_share)
    out = Path(args.out)
    folder = out.parent
    provenance = {
        "command": "motifs", "contrib": str(Path(args.contrib).resolve()), "window": window,
        "window_start": window_start,
        "task_regions": [str(Path(path).resolve()) for path in args.task_regions] if args.task_regions else None,
        "regions_searched": {task: len(info.regions) if rows_of is None else len(rows_of[task]) for task in info.tasks},
        "max_seqlets": settings.max_seqlets, "seed": settings.seed,
        "target_fdr": settings.target_fdr, "n_leiden_runs": settings.n_leiden_runs,
        "min_strength": settings.min_strength, "min_purity": settings.min_purity,
        "min_seqlet_share": settings.min_seqlet_share,
        "database": str(Path(args.meme).resolve()) if args.meme else
        {"release": args.jaspar_release, "collection": args.jaspar_collection, "tax_group": tax_group},
        "contrib_provenance": info.provenance,
    }
    # Refused before the long discovery: two tasks whose modisco files would share a name, and an input lying in
    # the output folder under an output's name (a motifs.meme given as --meme beside --out).
    modisco_files = {task: folder / "modisco" / f"{name}.h5" for task, name in safe_file_names(info.tasks).items()}
    beside = {name: folder / name for name in ("seqlets.bed", "called_seqlets.bed", "matches.tsv", "motifs.meme")}
    check_not_inputs([*modisco_files.values(), *beside.values()])
    if out.resolve() in {path.resolve() for path in [*modisco_files.values(), *beside.values()]}:
        raise OutputError(f"--out {out}: genomatt motifs writes another of its outputs under this name in that folder "
                          f"({', '.join(beside)}, modisco/<task>.h5); name it motifs.h5 or so")
    discoveries = discover_task_motifs(info, window_start, window, settings, rows_of)
    motifs, motif_seqlets, called_seqlets = [], [], []
    for discovery in discoveries:
        write_modisco_h5(modisco_files[discovery.task], discovery, provenance, info.length)
        motifs.extend(discovery.motifs)
        motif_seqlets.append(discovery.motif_seqlets)
        called_seqlets.append(discovery.called_seqlets)
    warn_of_earlier_files(folder / "modisco", "*.h5", [modisco_files[discovery.task] for discovery in discoveries])

    if motifs:
        log.info("matching %d motifs against %d known motifs", len(motifs), len(database))
        match_motifs(motifs, database, top=args.top_matches, threads=args.threads)
    else:
        log.warning("no motifs were found in any task; writing empty results")

    seqlets = pd.concat(motif_seqlets, ignore_index=True)
    called = pd.concat(called_seqlets, ignore_index=True)
    write_motifs(out, motifs, seqlets, called, provenance)
    write_bed(seqlets, beside["seqlets.bed"], name="motif")
    called = called.assign(name=called["task"] + "." + called["sign"])
    write_bed(called, beside["called_seqlets.bed"], name="name")
    write_matches_tsv(motifs, beside["matches.tsv"])
    write_meme([motif.trimmed_motif() for motif in motifs], beside["motifs.meme"])
    log.info("wrote %d motifs, %d motif seqlets and %d called seqlets to %s", len(motifs), len(seqlets),
             len(called), out)
