rule motifs:
    """Seqlets, de novo motifs (tfmodisco-lite) and their known-motif matches for every task of a sample."""
    input:
        unpack(known_motifs_file),
        contrib=f"{OUTDIR}/{{sample}}/contrib.h5",
        task_beds=sample_motif_task_regions,
        task_regions_check=sample_task_regions_check,
    output:
        motifs=f"{OUTDIR}/{{sample}}/motifs/motifs.h5",
        seqlets=f"{OUTDIR}/{{sample}}/motifs/seqlets.bed",
        called_seqlets=f"{OUTDIR}/{{sample}}/motifs/called_seqlets.bed",
        matches=f"{OUTDIR}/{{sample}}/motifs/matches.tsv",
        meme=f"{OUTDIR}/{{sample}}/motifs/motifs.meme",
        modisco=directory(f"{OUTDIR}/{{sample}}/motifs/modisco"),
    log:
        f"{OUTDIR}/logs/{{sample}}/motifs.log",
    benchmark:
        benchmark("{sample}/motifs")
    params:
        options=motif_options(),
        known=known_motif_options,
        tasks=sample_motif_task_options,
    threads: MOTIFS.get("threads", 2)
    resources:
        mem_mb=MOTIFS.get("mem_mb", 16000),
        runtime=MOTIFS.get("runtime", 240),
    conda:
        "../../envs/genomatt.yaml"
    shell:
        "genomatt motifs --contrib {input.contrib:q} --out {output.motifs:q} --threads {threads} {params.options}"
        " {params.known} {params.tasks} > {log:q} 2>&1"


rule hits:
    """Instances of every discovered motif in the contributions of its task's regions, with bigWig tracks."""
    input:
        contrib=f"{OUTDIR}/{{sample}}/contrib.h5",
        motifs=f"{OUTDIR}/{{sample}}/motifs/motifs.h5",
        fasta=sample_fasta,
        task_beds=sample_motif_task_regions,
        task_regions_check=sample_task_regions_check,
    output:
        tsv=f"{OUTDIR}/{{sample}}/hits/hits.tsv",
        extra=f"{OUTDIR}/{{sample}}/hits/hits_genomatt.tsv",
        bed=f"{OUTDIR}/{{sample}}/hits/hits.bed",
        h5=f"{OUTDIR}/{{sample}}/hits/hits.h5",
        qc=f"{OUTDIR}/{{sample}}/hits/regions_qc.tsv",
        motif_data=f"{OUTDIR}/{{sample}}/hits/motif_data.tsv",
        motif_cwms=f"{OUTDIR}/{{sample}}/hits/motif_cwms.npy",
        parameters=f"{OUTDIR}/{{sample}}/hits/parameters.json",
        tracks=directory(f"{OUTDIR}/{{sample}}/hits/tracks"),
    log:
        f"{OUTDIR}/logs/{{sample}}/hits.log",
    benchmark:
        benchmark("{sample}/hits")
    params:
        options=hit_options(),
        # Where the scan runs changes no hit (float32 on either): a function of the input, no trigger of a rerun.
        device=lambda wildcards, input: DEVICE,
        seed=config.get("seed", 0),
        tasks=sample_motif_task_options,
    threads: 1
    resources:
        mem_mb=HITS.get("mem_mb", 8000),
        runtime=HITS.get("runtime", 120),
        gpu=GPUS,
    conda:
        "../../envs/genomatt.yaml"
    shell:
        "genomatt hits --contrib {input.contrib:q} --motifs {input.motifs:q} --fasta {input.fasta:q}"
        " --out-dir \"$(dirname {output.tsv:q})\" --tracks-dir {output.tracks:q} {params.options}"
        " --device {params.device} --seed {params.seed} {params.tasks}"
        " > {log:q} 2>&1"
