SIMULATION = config.get("simulate", {})


rule simulate:
    """Write the simulated genome with planted JASPAR motifs (the embedded default data)."""
    input:
        simulation_motif_files(),
    output:
        fasta=f"{OUTDIR}/simulated/genome.fa",
        index=f"{OUTDIR}/simulated/genome.fa.fai",
        regions=f"{OUTDIR}/simulated/regions.bed",
        tasks=f"{OUTDIR}/simulated/tasks.bed",
        task_beds=directory(f"{OUTDIR}/simulated/tasks"),
        negatives=f"{OUTDIR}/simulated/negatives.bed",
        truth=f"{OUTDIR}/simulated/truth.tsv",
        motifs=f"{OUTDIR}/simulated/motifs.meme",
        manifest=f"{OUTDIR}/simulated/manifest.json",
    log:
        f"{OUTDIR}/logs/simulate.log",
    benchmark:
        benchmark("simulate")
    params:
        plant=simulation_plant_option(),
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
        "genomatt simulate --out-dir \"$(dirname {output.fasta:q})\" --seed {params.seed} {params.plant}"
        " --jaspar-release {params.release} --n-chromosomes {params.chromosomes}"
        " --chromosome-length {params.length} --region-width {params.width}"
        " --n-positives {params.positives} --n-negatives {params.negatives} > {log:q} 2>&1"


rule check:
    """Check a sample's inputs in seconds before the long steps: files, chromosomes, task names, the model at the width."""
    input:
        unpack(negatives_bed),
        fasta=sample_fasta,
        regions=sample_regions,
        task_beds=sample_check_input_task_beds,
        model=sample_user_model_inputs,
    output:
        f"{OUTDIR}/{{sample}}/check.json",
    log:
        f"{OUTDIR}/logs/{{sample}}/check.log",
    benchmark:
        benchmark("{sample}/check")
    params:
        width=config["width"],
        on_missing=sample_on_missing,
        options=sample_check_options,
        # Checked, but no trigger of the check (Snakemake compares no param given as a function of the input): the
        # known motifs, whose change reruns `motifs` (their input and options) and what follows, and a user model's
        # task BEDs, checked here so that a task without one stops the run before the attribution, and after an edit
        # by `check_task_regions`, which reruns motifs and hits, not the extraction and attribution after the check.
        motifs=lambda wildcards, input: known_motif_options(wildcards),
        task_regions=lambda wildcards, input: (
            "" if sample_trains_model(wildcards.sample) else sample_check_task_regions_option(wildcards)),
        # Whether motifs and hits search each task's regions: then regions none of which lies in one stop the run.
        select=lambda wildcards, input: task_regions_select_option(wildcards),
    threads: 1
    resources:
        mem_mb=4000,
        runtime=15,
    conda:
        "../../envs/genomatt.yaml"
    shell:
        "genomatt check --fasta {input.fasta:q} --regions {input.regions:q} --width {params.width}"
        " --on-missing {params.on_missing} {params.options} {params.task_regions} {params.select} {params.motifs}"
        " --out {output:q}"
        " > {log:q} 2>&1"


rule check_task_regions:
    """Check a user model's task BEDs again when they are edited, before motifs and hits read them: against the
    tasks the model's check recorded, without loading the model again."""
    input:
        check=f"{OUTDIR}/{{sample}}/check.json",
        fasta=sample_fasta,
        regions=sample_regions,
        task_beds=sample_motif_task_regions,
    output:
        f"{OUTDIR}/{{sample}}/task_regions_check.json",
    log:
        f"{OUTDIR}/logs/{{sample}}/check_task_regions.log",
    benchmark:
        benchmark("{sample}/check_task_regions")
    params:
        width=config["width"],
        on_missing=sample_on_missing,
        task_regions=sample_motif_task_options,
    threads: 1
    resources:
        mem_mb=4000,
        runtime=15,
    conda:
        "../../envs/genomatt.yaml"
    shell:
        "genomatt check --fasta {input.fasta:q} --regions {input.regions:q} --width {params.width}"
        " --on-missing {params.on_missing} {params.task_regions} --task-regions-select"
        " --model-checked {input.check:q} --out {output:q} > {log:q} 2>&1"


rule extract:
    """One-hot encode fixed-width windows of a sample's regions into HDF5."""
    input:
        check=f"{OUTDIR}/{{sample}}/check.json",
        fasta=sample_fasta,
        regions=sample_regions,
    output:
        f"{OUTDIR}/{{sample}}/regions.h5",
    log:
        f"{OUTDIR}/logs/{{sample}}/extract.log",
    benchmark:
        benchmark("{sample}/extract")
    params:
        width=config["width"],
        on_missing=sample_on_missing,
    threads: 1
    resources:
        mem_mb=4000,
        runtime=30,
    conda:
        "../../envs/genomatt.yaml"
    shell:
        "genomatt extract --fasta {input.fasta:q} --regions {input.regions:q} --width {params.width}"
        " --on-missing {params.on_missing} --out {output:q} > {log:q} 2>&1"
