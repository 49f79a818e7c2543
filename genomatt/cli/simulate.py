"""``genomatt simulate``: write the synthetic genome with planted motifs (the embedded default data)."""

from __future__ import annotations

import argparse
import dataclasses

from genomatt.cli.arguments import non_negative_int, positive_int, seed
from genomatt.simulation_settings import SimulationSettings

_DEFAULTS = SimulationSettings()


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "simulate",
        help="write a synthetic genome with planted JASPAR motifs, its region BEDs and truth table",
        description="Write genome.fa (+ .fai), regions.bed, one BED per motif task, negatives.bed, truth.tsv, "
        "motifs.meme and manifest.json into --out-dir.",
    )
    parser.add_argument("--out-dir", required=True, help="output folder")
    parser.add_argument("--seed", type=seed, default=_DEFAULTS.seed, help="random seed (default: %(default)s)")
    parser.add_argument("--plant", nargs="+", default=list(_DEFAULTS.motifs), dest="motifs", metavar="MOTIF",
                        help="JASPAR IDs, TF names or motif files (MEME or JASPAR format) to plant "
                        "(default: %(default)s)")
    parser.add_argument("--jaspar-release", default=_DEFAULTS.jaspar_release, help="(default: %(default)s)")
    parser.add_argument("--n-chromosomes", type=positive_int, default=_DEFAULTS.n_chromosomes,
                        help="number of chromosomes (default: %(default)s)")
    parser.add_argument("--chromosome-length", type=positive_int, default=_DEFAULTS.chromosome_length,
                        help="length of each chromosome in bp (default: %(default)s)")
    parser.add_argument("--region-width", type=positive_int, default=_DEFAULTS.region_width,
                        help="width of each simulated region in bp (default: %(default)s)")
    parser.add_argument("--n-positives", type=positive_int, default=_DEFAULTS.n_positive_regions,
                        dest="n_positive_regions",
                        help="number of motif-bearing regions (default: %(default)s)")
    parser.add_argument("--n-negatives", type=non_negative_int, default=_DEFAULTS.n_negative_regions,
                        dest="n_negative_regions",
                        help="number of background regions (default: %(default)s)")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> None:
    from genomatt.simulate import simulate_genome

    names = {f.name for f in dataclasses.fields(SimulationSettings)}
    settings = SimulationSettings(**{key: value for key, value in vars(args).items() if key in names})
    simulate_genome(args.out_dir, settings)
