import logging

import h5py
import numpy as np
import pandas as pd
from motif_contributions import overlap_fraction, two_motif_contributions

from genomatt.contributions import read_contributions
from genomatt.motifs.discovery import DiscoverySettings, resolve_window
from genomatt.motifs.task_discovery import discover_task_motifs


def test_each_task_is_discovered_in_its_own_rows_named_as_rows_of_the_file(tmp_path):
    _, path = two_motif_contributions(tmp_path)
    info = read_contributions(path)
    start, width = resolve_window(None, info.length)
    every = np.arange(len(info.regions))
    rows = {"GATA1": every[1::2], "CTCF": every, "noise": every[::3]}
    discoveries = discover_task_motifs(info, start, width, DiscoverySettings(threads=2), rows)
    assert [discovery.task for discovery in discoveries] == info.tasks
    for discovery in discoveries:
        assert sorted(discovery.region_order) == list(rows[discovery.task])
        names = set(info.regions["name"].iloc[rows[discovery.task]])
        assert set(discovery.called_seqlets["region"]) <= names and set(discovery.motif_seqlets["region"]) <= names
    found = {motif.name for discovery in discoveries for motif in discovery.motifs}
    assert {"GATA1.pos.0", "CTCF.pos.0"} <= found


def test_flanks_without_contribution_are_left_out_of_discovery(tmp_path, caplog):
    # A model whose output sees only the middle of its input (a profile model's crop) gives exactly zero
    # contributions on the flanks, where seqlet similarities are undefined (tfmodisco-lite failed on NaN).
    genome, path = two_motif_contributions(tmp_path)
    with h5py.File(path, "r+") as handle:
        hypothetical = handle["hypothetical"][:]
        length = hypothetical.shape[-1]
        hypothetical[:, 0, :, :30] = 0
        hypothetical[:, 0, :, length - 20:] = 0
        handle["hypothetical"][:] = hypothetical
        handle["contrib"][:] = handle["onehot"][:][:, None] * hypothetical
    info = read_contributions(path)
    start, width = resolve_window(None, info.length)
    with caplog.at_level(logging.WARNING, logger="genomatt"):
        discoveries = discover_task_motifs(info, start, width, DiscoverySettings(threads=2, seed=1))
    gata = discoveries[0]
    assert (gata.window_start, gata.window_size) == (30, length - 50)
    assert (discoveries[1].window_start, discoveries[1].window_size) == (0, length)
    assert f"task GATA1: bp 0-30 and {length - 20}-{length} of the regions carry no contribution" in caplog.text
    truth = pd.read_csv(genome.truth_tsv, sep="\t")
    seqlets = gata.motif_seqlets[gata.motif_seqlets["motif"] == "GATA1.pos.0"]
    assert len(seqlets) and overlap_fraction(seqlets, truth[truth["motif_name"] == "GATA1"]) > 0.9
