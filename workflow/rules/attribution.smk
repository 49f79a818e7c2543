rule attribute_shard:
    """DeepLIFT/DeepSHAP contributions of one shard of a sample's regions (references seeded by region)."""
    input:
        regions=f"{OUTDIR}/{{sample}}/regions.h5",
        model=sample_model_inputs,
    output:
        temp(f"{OUTDIR}/{{sample}}/shards/contrib.{{shard}}.h5"),
    log:
        f"{OUTDIR}/logs/{{sample}}/attribute.{{shard}}.log",
    benchmark:
        benchmark("{sample}/attribute.{shard}")
    params:
        options=attribution_options,
        shards=SHARDS,
        # The batch size sets where the shards are cut (between the batches of one run over every region) and the
        # contributions' rounding: a change reruns every shard, so that all are cut alike. The device changes
        # rounding only: a function of the input, whose change reruns nothing.
        batch_size=ATTRIBUTION.get("batch_size", 128),
        device=lambda wildcards, input: DEVICE,
    threads: ATTRIBUTION.get("threads", 1)
    resources:
        mem_mb=ATTRIBUTION.get("mem_mb", 8000),
        runtime=ATTRIBUTION.get("runtime", 240),
        gpu=GPUS,
    conda:
        "../../envs/genomatt.yaml"
    shell:
        "genomatt attribute --regions-h5 {input.regions:q} {params.options} --out {output:q}"
        " --shard {wildcards.shard}/{params.shards} --batch-size {params.batch_size} --device {params.device}"
        " > {log:q} 2>&1"


rule gather_contributions:
    """Gather the attribution shards of a sample into one contribution file, in shard order."""
    input:
        expand(f"{OUTDIR}/{{{{sample}}}}/shards/contrib.{{shard}}.h5", shard=range(SHARDS)),
    output:
        f"{OUTDIR}/{{sample}}/contrib.h5",
    log:
        f"{OUTDIR}/logs/{{sample}}/gather.log",
    benchmark:
        benchmark("{sample}/gather")
    params:
        # The settings the (temporary) shards were made with: a change reruns the gather, and so the shards, even
        # when every shard of a run failed and none is left to be out of date.
        attribution=attribution_options,
    threads: 1
    resources:
        mem_mb=config.get("gather", {}).get("mem_mb", 8000),
        runtime=config.get("gather", {}).get("runtime", 30),
    conda:
        "../../envs/genomatt.yaml"
    shell:
        "genomatt gather --inputs {input:q} --out {output:q} > {log:q} 2>&1"
