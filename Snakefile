# genomatt workflow: from a genome and BED regions to contributions, motifs and a report.
# Every rule is one `genomatt` command; all logic lives in the package.
import os

from snakemake.utils import min_version, validate

min_version("8.0")

# envs/genomatt.yaml installs genomatt from the folder of this Snakefile (pip expands the variable), so the
# conda environment is right wherever snakemake runs: --directory elsewhere, or this workflow as a module.
os.environ.update(GENOMATT_SOURCE=str(workflow.current_basedir))


# The embedded demo config applies only when no --configfile is given: a user's config is the whole config,
# never merged onto the demo's (whose `demo` sample would otherwise run beside the user's samples).
if not workflow.config_settings.configfiles:

    configfile: f"{workflow.basedir}/config/config.yaml"


validate(config, "workflow/schemas/config.schema.yaml")


include: "workflow/rules/common.smk"


# The first rule, so the default target; not marked default_target, which in a workflow that imports this
# one as a module would take the place of that workflow's own first rule.
rule all:
    """Default target: every sample's outputs, the report last, with every job's benchmark (time and memory)."""
    input:
        final_outputs,


include: "workflow/rules/data.smk"
include: "workflow/rules/model.smk"
include: "workflow/rules/attribution.smk"
include: "workflow/rules/motifs.smk"
include: "workflow/rules/report.smk"


# After the rules, whose outputs a config may name (another sample's trained model). Imported as a module, the
# importing workflow may make these files itself; Snakemake names any it cannot.
if workflow.modifier.namespace is None:
    check_configured_files()
