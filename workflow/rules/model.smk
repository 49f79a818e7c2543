rule check_training:
    """Check a sample's inputs as `check` does, before training: rerun only when what training reads changes."""
    input:
        # Training's own inputs: the check's rerun retrains the model, which their change does anyway. The regions
        # (and `on_missing`, the known motifs) are checked but no trigger, as training reads none of them: their
        # change reruns `check` and the extraction after it, not the training (an input only where a job of the
        # run makes them, to be there when read).
        unpack(negatives_bed),
        fasta=sample_fasta,
        task_beds=sample_task_beds,
        regions=sample_regions_made_by_the_workflow,
    output:
        f"{OUTDIR}/{{sample}}/model/training_check.json",
    log:
        f"{OUTDIR}/logs/{{sample}}/check_training.log",
    benchmark:
        benchmark("{sample}/check_training")
    params:
        width=config["width"],
        options=sample_check_options,
        regions=lambda wildcards, input: quote(sample_regions(wildcards)),
        on_missing=lambda wildcards, input: sample_on_missing(wildcards),
        motifs=lambda wildcards, input: known_motif_options(wildcards),
    threads: 1
    resources:
        mem_mb=4000,
        runtime=15,
    conda:
        "../../envs/genomatt.yaml"
    shell:
        "genomatt check --fasta {input.fasta:q} --regions {params.regions} --width {params.width}"
        " --on-missing {params.on_missing} {params.options} {params.motifs} --out {output:q} > {log:q} 2>&1"


rule train:
    """Train the sample's sequence model on its task BEDs and record its held-out test metrics."""
    input:
        unpack(negatives_bed),
        check=f"{OUTDIR}/{{sample}}/model/training_check.json",
        fasta=sample_fasta,
        beds=sample_task_beds,
        architecture=training_architecture_file,
    output:
        model=f"{OUTDIR}/{{sample}}/model/model.pt",
        metrics=f"{OUTDIR}/{{sample}}/model/model.metrics.json",
    log:
        f"{OUTDIR}/logs/{{sample}}/train.log",
    benchmark:
        benchmark("{sample}/train")
    params:
        labels=sample_labels_option,
        width=config["width"],
        options=training_options(),
        beds=lambda wildcards, input: f"--task-regions {quoted(input.beds)}",
        # A trained model is the model whatever device trained it: a function of the input, no trigger of a rerun.
        device=lambda wildcards, input: DEVICE,
    threads: TRAINING.get("threads", 1)
    resources:
        mem_mb=TRAINING.get("mem_mb", 8000),
        runtime=TRAINING.get("runtime", 120),
        gpu=GPUS,
    conda:
        "../../envs/genomatt.yaml"
    shell:
        "genomatt train --fasta {input.fasta:q} {params.beds} {params.labels} --width {params.width}"
        " {params.options} --threads {threads} --device {params.device} --out {output.model:q}"
        " --metrics {output.metrics:q} > {log:q} 2>&1"
