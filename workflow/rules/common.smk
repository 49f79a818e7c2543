# Paths and config lookups shared by the rules (input functions, no rule logic).
OUTDIR = config["outdir"]
SIMULATED = "simulated"
TRAIN = "train"
ATTRIBUTION = config.get("attribution", {})
SHARDS = ATTRIBUTION.get("shards", 1)
TRAINING = config.get("train", {})
MOTIFS = config.get("motifs", {})
HITS = config.get("hits", {})


def sample_config(wildcards):
    return config["samples"][wildcards.sample]


def sample_fasta(wildcards):
    """FASTA of a sample: the simulated genome or the user's file."""
    fasta = sample_config(wildcards)["fasta"]
    return f"{OUTDIR}/simulated/genome.fa" if fasta == SIMULATED else fasta


def sample_regions(wildcards):
    """Regions BED of a sample: the simulated regions or the user's file."""
    regions = sample_config(wildcards)["regions"]
    return f"{OUTDIR}/simulated/regions.bed" if regions == SIMULATED else regions


def sample_task_beds(wildcards):
    """Training BEDs of a sample: the simulated tasks.bed (labelled by its name column) or the user's list."""
    tasks = sample_config(wildcards).get("tasks", SIMULATED)
    return [f"{OUTDIR}/simulated/tasks.bed"] if tasks == SIMULATED else list(tasks)


def sample_labels_option(wildcards):
    """`--labels-column` for a single BED whose column names the task (always for the simulated tasks.bed)."""
    sample = sample_config(wildcards)
    column = "name" if sample.get("tasks", SIMULATED) == SIMULATED else sample.get("labels_column")
    return f"--labels-column {column}" if column else ""


def sample_motif_task_regions(wildcards):
    """Task BEDs that restrict each task's motif discovery and hits to its positive regions: those of a
    trained model, or a user model's `tasks` when given; none when `motifs.task_regions` is false."""
    if not MOTIFS.get("task_regions", True):
        return []
    if sample_trains_model(wildcards.sample) or "tasks" in sample_config(wildcards):
        return sample_task_beds(wildcards)
    return []


def sample_motif_task_options(wildcards, input):
    """`--task-regions` (and `--labels-column`) of `genomatt motifs`/`hits` for the task BEDs among the inputs."""
    if not input.get("task_beds"):
        return ""
    return f"--task-regions {' '.join(input.task_beds)} {sample_labels_option(wildcards)}"


def sample_trains_model(sample):
    return config["samples"][sample].get("model", TRAIN) == TRAIN


def sample_model(wildcards):
    """Model of a sample: the one the train rule writes, or the user's artefact / TorchScript / import spec."""
    if sample_trains_model(wildcards.sample):
        return f"{OUTDIR}/{wildcards.sample}/model/model.pt"
    return sample_config(wildcards)["model"]


def sample_model_inputs(wildcards):
    """Files the attribution needs for the model (an import spec `package.module:factory` is no file)."""
    model = sample_model(wildcards)
    weights = sample_config(wildcards).get("weights")
    files = [] if ":" in model and not model.endswith((".pt", ".pth", ".ts")) else [model]
    return files + ([weights] if weights else [])


def sample_weights_option(wildcards):
    weights = sample_config(wildcards).get("weights")
    return f"--weights {weights}" if weights else ""


def sample_metrics_option(wildcards, input):
    return f"--metrics {input.metrics}" if input.get("metrics") else ""


def sample_metrics(wildcards):
    """Test metrics of a trained model for the report (none for a user's model)."""
    if sample_trains_model(wildcards.sample):
        return {"metrics": f"{OUTDIR}/{wildcards.sample}/model/model.metrics.json"}
    return {}


def attribution_gpus():
    return 1 if str(ATTRIBUTION.get("device", "cpu")).startswith("cuda") else 0


def final_outputs():
    """The files `rule all` asks for."""
    return expand(f"{OUTDIR}/{{sample}}/report.html", sample=config["samples"])


def training_options():
    """Command-line options of `genomatt train` from the `train` section of the config."""
    options = []
    for key in ("architecture", "epochs", "negatives", "seed", "threads", "jitter", "batch_size"):
        if key in TRAINING:
            options.append(f"--{key.replace('_', '-')} {TRAINING[key]}")
    for key in ("val_chroms", "test_chroms"):
        if key in TRAINING:
            options.append(f"--{key.replace('_', '-')} {' '.join(TRAINING[key])}")
    return " ".join(options)


def motif_options():
    """Command-line options of `genomatt motifs` from the `motifs` section of the config."""
    options = [f"--seed {config.get('seed', 0)}"]
    for key in ("jaspar_release", "jaspar_collection", "jaspar_tax_group", "window", "max_seqlets", "meme"):
        if MOTIFS.get(key) is not None:
            options.append(f"--{key.replace('_', '-')} {MOTIFS[key]}")
    return " ".join(options)
