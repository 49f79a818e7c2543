import numpy as np
from motif_contributions import two_motif_contributions

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
