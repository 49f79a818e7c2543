rule report:
    """The self-contained HTML report of a sample: run summary, motifs with logos and matches, example regions."""
    input:
        unpack(sample_metrics),
        contrib=f"{OUTDIR}/{{sample}}/contrib.h5",
        motifs=f"{OUTDIR}/{{sample}}/motifs/motifs.h5",
        hits=f"{OUTDIR}/{{sample}}/hits/hits.h5",
    output:
        html=f"{OUTDIR}/{{sample}}/report.html",
        logos=directory(f"{OUTDIR}/{{sample}}/logos"),
    log:
        f"{OUTDIR}/logs/{{sample}}/report.log",
    benchmark:
        benchmark("{sample}/report")
    params:
        metrics=sample_metrics_option,
        example_regions=config.get("report", {}).get("example_regions", 6),
    threads: 1
    resources:
        mem_mb=4000,
        runtime=30,
    conda:
        "../../envs/genomatt.yaml"
    shell:
        "genomatt report --contrib {input.contrib:q} --motifs {input.motifs:q} --hits {input.hits:q} {params.metrics}"
        " --example-regions {params.example_regions} --out {output.html:q} > {log:q} 2>&1"
