# Paths and config lookups shared by the rules (input functions, no rule logic). Every path or config value
# placed in a shell command is quoted (paths may hold spaces); rules quote their files with `:q`.
import os
from functools import cache
from shlex import quote

import yaml
from snakemake.exceptions import WorkflowError

# The config's sections as the schema describes them (validated, defaults written in, by the Snakefile).
# Beside this file, wherever the workflow runs from (imported as a module, `workflow.basedir` is the importer's).
with open(os.path.join(workflow.current_basedir, "..", "schemas", "config.schema.yaml")) as schema:
    SECTION_SCHEMAS = yaml.safe_load(schema)["properties"]


def numbers_as_floats():
    """Write the schema's `number` keys of each section as floats: `weight_decay: 0` then gives the option its
    default `0.0` gives (`--weight-decay 0.0`), so a key written out at its default reruns nothing."""
    for section, schema in SECTION_SCHEMAS.items():
        values = config.get(section)
        if not isinstance(values, dict):
            continue
        for key, rules in schema.get("properties", {}).items():
            if rules.get("type") == "number" and isinstance(values.get(key), int) and not isinstance(values[key], bool):
                values[key] = float(values[key])


numbers_as_floats()

def checked_outdir():
    """The config's outdir, refused if it holds a brace: Snakemake would read {name} in it as a wildcard of every
    rule (checked before any rule names a file under it)."""
    outdir = config["outdir"]
    if "{" in outdir or "}" in outdir:
        raise WorkflowError(f"the config names paths holding {{ or }}, which Snakemake reads as wildcards in file "
                            f"names: outdir: {outdir}. Rename the folder, or give another outdir.")
    return outdir


OUTDIR = checked_outdir()
SIMULATED = "simulated"
TRAIN = "train"
ATTRIBUTION = config.get("attribution", {})
SHARDS = ATTRIBUTION.get("shards", 1)
TRAINING = config.get("train", {})
MOTIFS = config.get("motifs", {})
HITS = config.get("hits", {})
# A job's memory (MB) and time (minutes) on a cluster, set per stage in the config; not command options.
RESOURCE_KEYS = ("mem_mb", "runtime")
# One device for each job that runs a model or scans contributions (train, attribute_shard, hits).
DEVICE = ATTRIBUTION.get("device", "cpu")
GPUS = 1 if DEVICE.startswith("cuda") else 0
NEGATIVE_KINDS = ("gc_matched", "shuffled")


def quoted(values):
    """Values as shell words, each quoted."""
    return " ".join(quote(str(value)) for value in values)


def sample_config(wildcards):
    return config["samples"][wildcards.sample]


def sample_fasta(wildcards):
    """FASTA of a sample: the simulated genome or the user's file."""
    fasta = sample_config(wildcards)["fasta"]
    return f"{OUTDIR}/simulated/genome.fa" if fasta == SIMULATED else as_the_workflow_spells_it(fasta)


def sample_regions(wildcards):
    """Regions BED of a sample: the simulated regions or the user's file."""
    regions = sample_config(wildcards)["regions"]
    return f"{OUTDIR}/simulated/regions.bed" if regions == SIMULATED else as_the_workflow_spells_it(regions)


def sample_task_beds(wildcards):
    """Training BEDs of a sample: the simulated tasks.bed (labelled by its name column) or the user's list."""
    tasks = sample_config(wildcards)["tasks"]
    if tasks == SIMULATED:
        return [f"{OUTDIR}/simulated/tasks.bed"]
    return [as_the_workflow_spells_it(path) for path in tasks]


def sample_labels_option(wildcards):
    """`--labels-column` for a single BED whose column names the task (always for the simulated tasks.bed)."""
    sample = sample_config(wildcards)
    column = "name" if sample.get("tasks") == SIMULATED else sample.get("labels_column")
    return f"--labels-column {quote(column)}" if column else ""


def sample_motif_task_regions(wildcards):
    """Task BEDs that restrict each task's motif discovery and hits to its positive regions: those of a
    trained model, or a user model's `tasks` when given; none when `motifs.task_regions` is false."""
    if not MOTIFS.get("task_regions", True):
        return []
    if sample_trains_model(wildcards.sample) or "tasks" in sample_config(wildcards):
        return sample_task_beds(wildcards)
    return []


# Options that carry config values are functions of the config (wildcards), not of `input`: Snakemake records
# such params and reruns a job whose options changed, which it does not do for params computed from `input`.


def sample_motif_task_options(wildcards):
    """`--task-regions` (and `--labels-column`) of `genomatt motifs`/`hits`: the sample's motif task BEDs."""
    beds = sample_motif_task_regions(wildcards)
    if not beds:
        return ""
    return f"--task-regions {quoted(beds)} {sample_labels_option(wildcards)}"


def sample_check_task_beds(wildcards):
    """Task BEDs the run may read: a trained model's training BEDs, or a user model's `tasks` when given (whether
    or not `motifs.task_regions` uses them, so that switching it reruns motifs and hits, not the check and all
    that follows it)."""
    if sample_trains_model(wildcards.sample) or "tasks" in sample_config(wildcards):
        return sample_task_beds(wildcards)
    return []


def sample_check_input_task_beds(wildcards):
    """The task BEDs that are inputs of the check: a model to train's, whose edit retrains the model and so reruns
    all that follows. A user model's task BEDs are checked too (`sample_check_task_regions_option`) but are no
    input: their edit reruns only their own check (`check_task_regions`), motifs and hits, which read them, not the
    check and the attribution after it."""
    return sample_task_beds(wildcards) if sample_trains_model(wildcards.sample) else []


def sample_check_task_regions_option(wildcards):
    """`--task-regions` (and `--labels-column`) of `genomatt check`: the task BEDs it checks."""
    beds = sample_check_task_beds(wildcards)
    return f"--task-regions {quoted(beds)} {sample_labels_option(wildcards)}" if beds else ""


def task_regions_select_option(wildcards):
    """`--task-regions-select` of `genomatt check` when motifs and hits search each task's regions."""
    return "--task-regions-select" if sample_motif_task_regions(wildcards) else ""


def checks_task_regions_apart(sample):
    """Whether a sample's task BEDs have a check of their own: a user model's, when motifs and hits read them (a
    model to train's are read by the check itself)."""
    return (not sample_trains_model(sample) and MOTIFS.get("task_regions", True)
            and "tasks" in config["samples"][sample])


def sample_task_regions_check(wildcards):
    """The check of a user model's task BEDs, which motifs and hits wait for (none where they have no check apart)."""
    if not checks_task_regions_apart(wildcards.sample):
        return []
    return [f"{OUTDIR}/{wildcards.sample}/task_regions_check.json"]


def sample_check_options(wildcards):
    """Options of `genomatt check` whose change reruns it and all that follows: a model to train's task BEDs and
    held-out chromosomes, the user's model with its declared task names. A user model's task BEDs are passed
    apart (`sample_check_task_regions_option`): they place regions in tasks for motifs and hits only."""
    options = []
    if sample_trains_model(wildcards.sample):
        options.append(sample_check_task_regions_option(wildcards))
    else:
        options.append(f"--model {quote(sample_model(wildcards))}")
    # Weights and task names without a user's model are refused by the check.
    options.append(sample_weights_option(wildcards))
    options.append(sample_task_names_option(wildcards))
    negatives = negatives_bed(wildcards)
    if negatives:
        options.append(f"--negatives {quote(negatives['negatives'])}")
    if sample_trains_model(wildcards.sample):
        options += [f"--{key.replace('_', '-')} {quoted(TRAINING[key])}" for key in ("val_chroms", "test_chroms")
                    if key in TRAINING]
    return " ".join(options)


def sample_task_names_option(wildcards):
    """`--task-names` naming the tasks of a user's model that names none, and `--targets` choosing the ones
    to explain."""
    names = sample_config(wildcards).get("task_names")
    targets = sample_config(wildcards).get("targets")
    return " ".join(([f"--task-names {quoted(names)}"] if names else [])
                    + ([f"--targets {quoted(targets)}"] if targets else []))


def sample_on_missing(wildcards):
    return sample_config(wildcards).get("on_missing", "error")


def negatives_bed(wildcards):
    """The training negatives BED when `train.negatives` names a file (none for the generated kinds)."""
    negatives = TRAINING.get("negatives", "gc_matched")
    if sample_trains_model(wildcards.sample) and negatives not in NEGATIVE_KINDS:
        return {"negatives": as_the_workflow_spells_it(negatives)}
    return {}


def known_motifs_file(wildcards):
    """The user's MEME file of known motifs, when `motifs.meme` is set."""
    return {"meme": as_the_workflow_spells_it(MOTIFS["meme"])} if MOTIFS.get("meme") else {}


def known_motif_options(wildcards):
    """Options naming the known-motif database: the user's MEME file, or the JASPAR release and taxon."""
    if MOTIFS.get("meme"):
        return f"--meme {quote(MOTIFS['meme'])}"
    options = []
    for key in ("jaspar_release", "jaspar_collection", "jaspar_tax_group"):
        if MOTIFS.get(key) is not None:
            options.append(f"--{key.replace('_', '-')} {quote(str(MOTIFS[key]))}")
    return " ".join(options)


def sample_trains_model(sample):
    return config["samples"][sample].get("model", TRAIN) == TRAIN


def sample_model(wildcards):
    """Model of a sample: the one the train rule writes, or the user's artefact / TorchScript / import spec."""
    if sample_trains_model(wildcards.sample):
        return f"{OUTDIR}/{wildcards.sample}/model/model.pt"
    return as_the_workflow_spells_it(sample_config(wildcards)["model"])


def sample_model_inputs(wildcards):
    """Files the attribution needs for the model (an import spec `package.module:factory` is no file): the model,
    and its weights, given in the sample or named by the model config (relative to that config's folder)."""
    model = sample_model(wildcards)
    weights = sample_config(wildcards).get("weights")
    weights = model_config_weights(model) if weights is None else as_the_workflow_spells_it(weights)
    return ([] if is_import_spec(model) else [model]) + ([weights] if weights else [])


def model_config_weights(model):
    """The weights a model config (YAML or JSON) names, relative to its folder; None for other models."""
    if model.lower().endswith((".yaml", ".yml", ".json")) and os.path.isfile(model):
        with open(model) as handle:
            named = yaml.safe_load(handle)
        if isinstance(named, dict) and named.get("weights") is not None:
            return os.path.join(os.path.dirname(model), str(named["weights"]))
    return None


def is_import_spec(model):
    """Whether a sample's `model` is an import spec `package.module:factory` rather than a file: a path that names
    a file is a file, whatever it holds (a folder named `run:2024`)."""
    return ":" in model and not os.path.isfile(model) and not model.endswith((".pt", ".pth", ".ts"))


def sample_user_model_inputs(wildcards):
    """Files of a user's model, checked before anything runs (none for a model the workflow trains)."""
    return [] if sample_trains_model(wildcards.sample) else sample_model_inputs(wildcards)


def sample_weights_option(wildcards):
    weights = sample_config(wildcards).get("weights")
    return f"--weights {quote(weights)}" if weights else ""


def attribution_options(wildcards):
    """Options of `genomatt attribute` that decide a sample's contributions: the model, its targets, the references
    and the rules. Also a param of the gather: the shards are temporary, so after every shard failed (none left) a
    changed setting must still find the gathered file out of date."""
    return (f"--model {quote(sample_model(wildcards))} {sample_weights_option(wildcards)} "
            f"{sample_task_names_option(wildcards)} --references {ATTRIBUTION.get('references', 20)}"
            f" --seed {config.get('seed', 0)} --rule {ATTRIBUTION.get('rule', 'rescale')}"
            f" --max-rule {ATTRIBUTION.get('max_rule', 'cross_max')}"
            f" --hit-max-rule {ATTRIBUTION.get('hit_max_rule', 'shapley')}"
            f" --profile-target {ATTRIBUTION.get('profile_target', 'bpnet')}")


def sample_metrics_option(wildcards):
    metrics = sample_metrics(wildcards)
    return f"--metrics {quote(metrics['metrics'])}" if metrics else ""


def sample_metrics(wildcards):
    """Test metrics of a trained model for the report (none for a user's model)."""
    if sample_trains_model(wildcards.sample):
        return {"metrics": f"{OUTDIR}/{wildcards.sample}/model/model.metrics.json"}
    return {}


def benchmark(name):
    """Benchmark file (time and memory) of one job, named after its rule and wildcards."""
    return f"{OUTDIR}/benchmarks/{name}.tsv"


def uses_simulation():
    return any(SIMULATED in (sample.get("fasta"), sample.get("regions"), sample.get("tasks"))
               for sample in config["samples"].values())


def final_outputs(wildcards):
    """The default target: every output a sample's run keeps (the report and every file before it, so that one
    deleted is made again), and every job's benchmark. The attribution shards are temporary, not among them."""
    outputs = [benchmark("simulate")] if uses_simulation() else []
    for sample in config["samples"]:
        outputs += sample_kept_outputs(sample)
        stages = ["check", "extract", "gather", "motifs", "hits", "report"]
        stages += ["check_training", "train"] if sample_trains_model(sample) else []
        stages += ["check_task_regions"] if checks_task_regions_apart(sample) else []
        stages += [f"attribute.{shard}" for shard in range(SHARDS)]
        outputs += [benchmark(f"{sample}/{stage}") for stage in stages]
    return outputs


def sample_kept_outputs(sample):
    """Every output a sample's run keeps, as its rules spell them (the attribution shards are temporary, not among
    them)."""
    kept_rules = ["check", "extract", "gather_contributions", "motifs", "hits", "report"]
    kept_rules += ["check_training", "train"] if sample_trains_model(sample) else []
    kept_rules += ["check_task_regions"] if checks_task_regions_apart(sample) else []
    return [path for name in kept_rules for path in expand(getattr(rules, name).output, sample=sample)]


@cache
def workflow_outputs():
    """The files this config's run makes and keeps, by absolute path, each with the spelling of the rule that makes
    it: the files a config may name before they exist (one sample explaining the model another sample trains)."""
    outputs = list(rules.simulate.output) if uses_simulation() else []
    for sample in config["samples"]:
        outputs += sample_kept_outputs(sample)
    return {os.path.abspath(path): path for path in outputs}


def as_the_workflow_spells_it(path):
    """A path the config names, spelt as the job making it spells it where it is an output of the run. Snakemake
    links a job to the one making its input by the path's spelling, which the config's may differ from
    (`./results/...`, a relative path beside an absolute outdir, an outdir with a trailing `/`). Other paths are left
    as they are."""
    return workflow_outputs().get(os.path.abspath(path), path)


def simulation_motif_files():
    """The MEME files among `simulate.motifs` (the others are JASPAR IDs or names), read as `genomatt simulate`
    reads them: an input of the simulation, whose edit plants other motifs."""
    motifs = config.get("simulate", {}).get("motifs") or []
    return [str(spec) for spec in motifs
            if str(spec).lower().endswith((".meme", ".txt")) or os.path.isfile(str(spec))]


# `genomatt simulate`'s default motifs (GATA1, TAL1::TCF3, CTCF, SPI1, CEBPB), passed when `simulate.motifs` is left
# out, so that writing them out runs the same command (tests/test_workflow.py checks them against the command's).
SIMULATION_MOTIFS = ["MA2388", "MA0091", "MA0139", "MA0080", "MA0466"]


def simulation_plant_option():
    """`--plant` of `genomatt simulate` from `simulate.motifs`, or the command's default motifs."""
    return f"--plant {quoted(config.get('simulate', {}).get('motifs', SIMULATION_MOTIFS))}"


def training_options():
    """Command-line options of `genomatt train` from the `train` section of the config."""
    options = []
    # `threads` is passed apart (a param of `train`, whose change retrains: it sets the order of float sums).
    for key in ("architecture", "architecture_config", "epochs", "learning_rate", "weight_decay", "patience",
                "negatives", "seed", "jitter", "batch_size"):
        if key in TRAINING:
            options.append(f"--{key.replace('_', '-')} {quote(str(TRAINING[key]))}")
    for key in ("val_chroms", "test_chroms"):
        if key in TRAINING:
            options.append(f"--{key.replace('_', '-')} {quoted(TRAINING[key])}")
    return " ".join(options)


def training_architecture_file(wildcards):
    """The `train.architecture_config` file, an input of `train` where the config names one."""
    architecture = TRAINING.get("architecture_config")
    return as_the_workflow_spells_it(architecture) if architecture else []


def hit_options():
    """Hit-calling options of `genomatt hits` from the `hits` section of the config (its resources aside), with the
    schema's defaults (the command's own, genomatt/motifs/hit_parameters.py) for the keys it leaves out."""
    # In the schema's order, not the config's: reordering keys in the config changes no command.
    return " ".join(f"--{key.replace('_', '-')} {HITS[key]}" for key in SECTION_SCHEMAS["hits"]["properties"]
                    if HITS.get(key) is not None and key not in RESOURCE_KEYS)


def motif_options():
    """Command-line options of `genomatt motifs` from the `motifs` section of the config."""
    options = [f"--seed {config.get('seed', 0)}"]
    for key in ("window", "max_seqlets", "min_strength", "min_purity", "min_seqlet_share"):
        if MOTIFS.get(key) is not None:
            options.append(f"--{key.replace('_', '-')} {MOTIFS[key]}")
    return " ".join(options)


def configured_files():
    """(config key, path) of every input file the config names; "simulated" and generated kinds are none."""
    files = []
    for sample, settings in config["samples"].items():
        for key in ("fasta", "regions"):
            if settings[key] != SIMULATED:
                files.append((f"samples.{sample}.{key}", settings[key]))
        tasks = settings.get("tasks", [])
        if tasks != SIMULATED:
            files += [(f"samples.{sample}.tasks", path) for path in tasks]
        if not sample_trains_model(sample) and not is_import_spec(settings["model"]):
            files.append((f"samples.{sample}.model", settings["model"]))
        if settings.get("weights"):
            files.append((f"samples.{sample}.weights", settings["weights"]))
        elif not sample_trains_model(sample) and model_config_weights(settings["model"]):
            files.append((f"samples.{sample}.model (its weights)", model_config_weights(settings["model"])))
    if any(sample_trains_model(sample) for sample in config["samples"]):
        if TRAINING.get("negatives", "gc_matched") not in NEGATIVE_KINDS:
            files.append(("train.negatives", TRAINING["negatives"]))
        if TRAINING.get("architecture_config"):
            files.append(("train.architecture_config", TRAINING["architecture_config"]))
    if MOTIFS.get("meme"):
        files.append(("motifs.meme", MOTIFS["meme"]))
    if any(settings["fasta"] == SIMULATED for settings in config["samples"].values()):
        files += [("simulate.motifs", path) for path in simulation_motif_files()]
    return files


def made_by_the_workflow(path):
    """Whether ``path`` is an output of the run (e.g. another sample's trained model), however it is spelt; a file
    merely under outdir is not (a misspelt FASTA there is the user's to fix)."""
    return os.path.abspath(path) in workflow_outputs()


def check_configured_files():
    """Refuse a config naming files that are not there, before any job, saying where relative paths are read.
    An output of the run is the workflow's to make (one sample explaining the model another sample trains).
    A path holding a brace is refused too: Snakemake reads {name} in a file name as a wildcard."""
    braced = [f"{key}: {path}" for key, path in configured_files() if "{" in str(path) or "}" in str(path)]
    if braced:
        raise WorkflowError(
            "the config names paths holding { or }, which Snakemake reads as wildcards in file names: "
            + "; ".join(braced) + ". Rename or link the files (or folder) to a path without braces.")
    missing = [f"{key}: {path}" for key, path in configured_files()
               if not os.path.exists(path) and not made_by_the_workflow(path)]
    if missing:
        raise WorkflowError(
            "the config names files that do not exist: " + "; ".join(missing) + f". Relative paths are read from "
            f"the working directory, {os.getcwd()} (where snakemake runs, or its --directory), not from the "
            "config file's folder.")
