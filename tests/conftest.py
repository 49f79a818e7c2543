"""Shared fixtures: a small simulated genome, written once per test session."""

from __future__ import annotations

import pytest

from genomatt.simulate import SimulationSettings, simulate_genome

SMALL_SETTINGS = SimulationSettings(
    seed=7, n_chromosomes=3, chromosome_length=60_000, region_width=200,
    n_positive_regions=120, n_negative_regions=40,
)


@pytest.fixture(scope="session")
def small_genome(tmp_path_factory):
    """A 3-chromosome simulated genome with the default motifs (a few seconds to build)."""
    return simulate_genome(tmp_path_factory.mktemp("small_genome"), SMALL_SETTINGS)
