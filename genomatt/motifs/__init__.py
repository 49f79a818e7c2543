"""Motifs: motif records and file formats, known-motif databases, discovery, matching and hits.

The names below are imported from their modules on first use, so that importing a light module of this
package (:mod:`genomatt.motifs.formats`) does not load torch or tfmodisco-lite.
"""

from genomatt import names_of_modules

_MODULES = {
    "CwmMotif": "formats",
    "DiscoverySettings": "discovery_settings",
    "HitParameters": "hit_parameters",
    "Motif": "formats",
    "call_hits": "hit_calling",
    "call_hits_in_store": "hits",
    "call_seqlets": "seqlets",
    "compare_motifs": "matching",
    "discover_motifs": "discovery",
    "fetch_jaspar": "jaspar",
    "fetch_jaspar_collection": "jaspar",
    "match_motifs": "matching",
    "read_cwm_motifs": "cwm_motifs",
    "read_hits": "hits",
    "read_jaspar": "formats",
    "read_meme": "formats",
    "read_motif_file": "formats",
    "read_motifs": "store",
    "write_hits": "hits",
    "write_meme": "formats",
}

__all__ = list(_MODULES)
__getattr__ = names_of_modules(__name__, _MODULES)
