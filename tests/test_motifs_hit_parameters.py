import argparse
import dataclasses
import json
import subprocess
import sys

import numpy as np
import pytest

from genomatt.cli import hits as hits_cli
from genomatt.errors import MotifError
from genomatt.motifs.hit_parameters import HitParameters


def test_defaults_and_the_recorded_settings():
    parameters = HitParameters()
    assert parameters.settings() == {"min_similarity": 0.7, "fdr": 0.05, "trim_threshold": 0.3, "seed": 0,
                                     "energy_floor": 1.0, "min_strength": 0.2, "min_sequence_quantile": 0.02,
                                     "min_task_share": 0.5}
    # hits.h5 and parameters.json record the settings in this order.
    assert list(json.loads(json.dumps(parameters.settings()))) == [
        "min_similarity", "fdr", "trim_threshold", "seed", "energy_floor", "min_strength", "min_sequence_quantile",
        "min_task_share"]
    with pytest.raises(dataclasses.FrozenInstanceError):
        parameters.fdr = 0.1


@pytest.mark.parametrize("field, value", [("min_similarity", 0.0), ("min_similarity", 1.5), ("fdr", 0.0),
                                          ("fdr", 1.0), ("trim_threshold", -0.1), ("energy_floor", -1.0),
                                          ("min_strength", 1.0), ("min_sequence_quantile", -0.1),
                                          ("min_sequence_quantile", 1.0), ("min_task_share", 1.5)])
def test_out_of_range_values_name_the_parameter(field, value):
    with pytest.raises(MotifError, match=field):
        HitParameters(**{field: value})


@pytest.mark.parametrize("seed", [None, -1, 1.5, True])
def test_the_seed_must_be_a_non_negative_integer(seed):
    with pytest.raises(MotifError, match=f"seed must be an integer >= 0, got {seed!r}"):
        HitParameters(seed=seed)
    assert HitParameters(seed=np.int64(7)).seed == 7


def test_the_hits_command_takes_its_defaults_from_the_record():
    parser = argparse.ArgumentParser()
    hits_cli.register(parser.add_subparsers())
    args = parser.parse_args(["hits", "--contrib", "c.h5", "--motifs", "m.h5", "--out-dir", "out"])
    assert {field.name: getattr(args, field.name) for field in dataclasses.fields(HitParameters)} == \
        HitParameters().settings()
    args = parser.parse_args(["hits", "--contrib", "c.h5", "--motifs", "m.h5", "--out-dir", "out", "--fdr", "0.01",
                              "--min-task-share", "0"])
    assert args.fdr == 0.01 and args.min_task_share == 0.0


def test_the_record_loads_without_torch_or_h5py():
    code = ("import sys, genomatt.motifs.hit_parameters; "
            "print(sorted(name for name in ('torch', 'h5py', 'pandas') if name in sys.modules))")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "[]"
