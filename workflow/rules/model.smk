rule check_training:
    """Check what training reads (the FASTA, task BEDs, negatives, held-out chromosomes, width) before it starts:
    `genomatt check` without the regions, whose edit (or one of `on_missing`, the known motifs) reruns `check` and
    the extraction after it, not the training."""
    input:
        unpack(negatives_bed),
        fasta=sample_fasta,
        task_beds=sample_task_beds,
    output:
        f"{OUTDIR}/{{sample}}/model/training_check.json",
    log:
        f"{OUTDIR}/logs/{{sample}}/check_training.log",
    benchmark:
        benchmark("{sample}/check_training")
    params:
        width=config["width"],
        options=sample_check_options,
    threads: 1
    resources:
        mem_mb=4000,
        runtime=15,
    conda:
        "../../envs/genomatt.yaml"
    shell:
        "genomatt check --fasta {input.fasta:q} --width {params.width} {params.options} --out {output:q}"
        " > {log:q} 2>&1"


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
        # The weights depend on torch's thread count (sums in another order): the configured count, not the one
        # --cores leaves the job, so that the same config trains the same model on any machine.
        threads=TRAINING.get("threads", 1),
    threads: TRAINING.get("threads", 1)
    resources:
        mem_mb=TRAINING.get("mem_mb", 8000),
        runtime=TRAINING.get("runtime", 120),
        gpu=GPUS,
    conda:
        "../../envs/genomatt.yaml"
    shell:
        "genomatt train --fasta {input.fasta:q} {params.beds} {params.labels} --width {params.width}"
        " {params.options} --threads {params.threads} --device {params.device} --out {output.model:q}"
        " --metrics {output.metrics:q} > {log:q} 2>&1"
