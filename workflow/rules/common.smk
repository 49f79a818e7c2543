# Paths and config lookups shared by the rules (input functions, no rule logic).
OUTDIR = config["outdir"]
SIMULATED = "simulated"


def sample_fasta(wildcards):
    """FASTA of a sample: the simulated genome or the user's file."""
    fasta = config["samples"][wildcards.sample]["fasta"]
    return f"{OUTDIR}/simulated/genome.fa" if fasta == SIMULATED else fasta


def sample_regions(wildcards):
    """Regions BED of a sample: the simulated regions or the user's file."""
    regions = config["samples"][wildcards.sample]["regions"]
    return f"{OUTDIR}/simulated/regions.bed" if regions == SIMULATED else regions


def final_outputs():
    """The files `rule all` asks for."""
    return expand(f"{OUTDIR}/{{sample}}/regions.h5", sample=config["samples"])
