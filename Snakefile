# genomatt workflow: from a genome and BED regions to contributions, motifs and a report.
# Every rule is one `genomatt` command; all logic lives in the package.
from snakemake.utils import min_version, validate

min_version("8.0")


configfile: "config/config.yaml"


validate(config, "workflow/schemas/config.schema.yaml")


include: "workflow/rules/common.smk"
include: "workflow/rules/data.smk"
include: "workflow/rules/model.smk"
include: "workflow/rules/attribution.smk"
include: "workflow/rules/motifs.smk"
include: "workflow/rules/report.smk"


rule all:
    """Default target: every stage's final outputs for every sample."""
    input:
        final_outputs(),
    default_target: True
