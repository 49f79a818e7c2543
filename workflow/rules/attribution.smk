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
        model=sample_model,
        weights=sample_weights_option,
        task_names=sample_task_names_option,
        shards=SHARDS,
        references=ATTRIBUTION.get("references", 20),
        batch_size=ATTRIBUTION.get("batch_size", 128),
        device=DEVICE,
        rule=ATTRIBUTION.get("rule", "rescale"),
        max_rule=ATTRIBUTION.get("max_rule", "cross_max"),
        hit_max_rule=ATTRIBUTION.get("hit_max_rule", "shapley"),
        profile_target=ATTRIBUTION.get("profile_target", "bpnet"),
        seed=config.get("seed", 0),
    threads: ATTRIBUTION.get("threads", 1)
    resources:
        mem_mb=ATTRIBUTION.get("mem_mb", 8000),
        runtime=ATTRIBUTION.get("runtime", 240),
        gpu=GPUS,
    conda:
        "../../envs/genomatt.yaml"
    shell:
        "genomatt attribute --regions-h5 {input.regions:q} --model {params.model:q} {params.weights} {params.task_names}"
        " --out {output:q} --shard {wildcards.shard}/{params.shards} --references {params.references}"
        " --seed {params.seed} --batch-size {params.batch_size} --device {params.device} --rule {params.rule}"
        " --max-rule {params.max_rule} --hit-max-rule {params.hit_max_rule} --profile-target {params.profile_target}"
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
    threads: 1
    resources:
        mem_mb=8000,
        runtime=30,
    conda:
        "../../envs/genomatt.yaml"
    shell:
        "genomatt gather --inputs {input:q} --out {output:q} > {log:q} 2>&1"
