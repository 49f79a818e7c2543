"""Motifs: motif records and file formats, known-motif databases, discovery, matching and hits."""
