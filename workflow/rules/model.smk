rule train:
    """Train the sample's sequence model on its task BEDs and record its held-out test metrics."""
    input:
        unpack(negatives_bed),
        check=f"{OUTDIR}/{{sample}}/check.json",
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
        device=DEVICE,
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
