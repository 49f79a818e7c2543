SIMULATION = config.get("simulate", {})


rule simulate:
    """Write the simulated genome with planted JASPAR motifs (the embedded default data)."""
    output:
        fasta=f"{OUTDIR}/simulated/genome.fa",
        regions=f"{OUTDIR}/simulated/regions.bed",
        tasks=f"{OUTDIR}/simulated/tasks.bed",
        truth=f"{OUTDIR}/simulated/truth.tsv",
        manifest=f"{OUTDIR}/simulated/manifest.json",
    log:
        f"{OUTDIR}/logs/simulate.log",
    params:
        motifs=" ".join(SIMULATION.get("motifs", [])),
        release=SIMULATION.get("jaspar_release", "JASPAR2024"),
        chromosomes=SIMULATION.get("chromosomes", 5),
        length=SIMULATION.get("chromosome_length", 500000),
        positives=SIMULATION.get("positives", 2000),
        negatives=SIMULATION.get("negatives", 1000),
        width=config["width"],
        seed=config.get("seed", 0),
    threads: 1
    resources:
        mem_mb=2000,
        runtime=30,
    conda:
        "../../envs/genomatt.yaml"
    shell:
        "genomatt simulate --out $(dirname {output.fasta}) --seed {params.seed} --motifs {params.motifs}"
        " --jaspar-release {params.release} --chromosomes {params.chromosomes}"
        " --chromosome-length {params.length} --region-width {params.width}"
        " --positives {params.positives} --negatives {params.negatives} > {log} 2>&1"


rule extract:
    """One-hot encode fixed-width windows of a sample's regions into HDF5."""
    input:
        fasta=sample_fasta,
        regions=sample_regions,
    output:
        f"{OUTDIR}/{{sample}}/regions.h5",
    log:
        f"{OUTDIR}/logs/{{sample}}/extract.log",
    params:
        width=config["width"],
    threads: 1
    resources:
        mem_mb=4000,
        runtime=30,
    conda:
        "../../envs/genomatt.yaml"
    shell:
        "genomatt extract --fasta {input.fasta} --bed {input.regions} --width {params.width}"
        " --out {output} > {log} 2>&1"
