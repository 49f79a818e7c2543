import numpy as np
import pytest

from genomatt.errors import MotifError
from genomatt.motifs.formats import Motif, read_meme, reverse_complement_matrix, write_meme
from genomatt.motifs.jaspar import fetch_jaspar, fetch_jaspar_collection, resolve_motifs


def test_meme_round_trip(tmp_path):
    rng = np.random.default_rng(0)
    motifs = [Motif(f"M{i}", f"TF{i}", rng.dirichlet(np.ones(4), size=6 + i).T, sites=10) for i in range(3)]
    path = write_meme(motifs, tmp_path / "m.meme")
    back = read_meme(path)
    assert [(m.id, m.name, m.sites) for m in back] == [(m.id, m.name, m.sites) for m in motifs]
    for a, b in zip(motifs, back):
        np.testing.assert_allclose(a.probabilities, b.probabilities, atol=1e-5)


def test_meme_reader_tolerates_rows_not_summing_to_one(tmp_path):
    path = tmp_path / "m.meme"
    path.write_text("MEME version 4\n\nALPHABET= ACGT\n\nMOTIF X1 alias\nletter-probability matrix: alength= 4 w= 2\n"
                    "0.5 0.2 0.2 0.08\n0.25 0.25 0.25 0.26\n\nMOTIF X2\nletter-probability matrix:\n1 0 0 0\n")
    first, second = read_meme(path)
    np.testing.assert_allclose(first.probabilities.sum(axis=0), 1)
    assert first.name == "alias" and second.width == 1


@pytest.mark.parametrize("body, message", [
    ("MOTIF A\nletter-probability matrix: w= 1\n0.5 0.5\n", "expected 4 probabilities"),
    ("MOTIF A\nletter-probability matrix: w= 1\n0.9 0.9 0.9 0.9\n", "sum to 3.600"),
    ("MOTIF A\nletter-probability matrix: w= 3\n1 0 0 0\n", "declares w=3 but has 1 rows"),
    ("MOTIF A\nnothing here\n", "has no letter-probability matrix"),
    ("", "no MOTIF entries"),
    ("MOTIF A\nletter-probability matrix: w= 1\n1 0 0 0\n\nMOTIF B\nletter-probability matrix: w= 1\n0 1 0 0\n\n"
     "MOTIF A\nletter-probability matrix: w= 1\n1 0 0 0\n", r":11: motif A is given again \(first at line 3\)"),
])
def test_meme_reader_errors(tmp_path, body, message):
    path = tmp_path / "bad.meme"
    path.write_text("MEME version 4\n\n" + body)
    with pytest.raises(MotifError, match=message):
        read_meme(path)


DNA_BLOCK = ('ALPHABET "DNA" DNA-LIKE\nA "Adenine" CC0000 ~ T "Thymine" 008000\n'
             'C "Cytosine" 0000CC ~ G "Guanine" FFB300\nN "Any base" = ACGT\nX = ACGT\nEND ALPHABET\n')
RNA_BLOCK = ('ALPHABET "RNA" RNA-LIKE\nA "Adenine" CC0000\nC "Cytosine" 0000CC\nG "Guanine" FFB300\n'
             'U "Uracil" 008000\nN "Any base" = ACGU\nEND ALPHABET\n')


@pytest.mark.parametrize("prefix, header, alphabet", [("", "MEME version 5\n\n", DNA_BLOCK),
                                                      ("\ufeff", "MEME version 4\n\n", "ALPHABET= ACGT\n")])
def test_meme_5_alphabet_blocks_and_byte_order_marks_are_read(tmp_path, prefix, header, alphabet):
    path = tmp_path / "m.meme"
    path.write_text(prefix + header + alphabet + "\nMOTIF M1 GATA1\nletter-probability matrix: w= 1\n0 0 1 0\n",
                    encoding="utf-8")
    (motif,) = read_meme(path)
    assert motif.name == "GATA1" and motif.probabilities[:, 0].tolist() == [0, 0, 1, 0]


def test_an_rna_alphabet_block_is_refused(tmp_path):
    path = tmp_path / "rna.meme"
    path.write_text("MEME version 5\n\n" + RNA_BLOCK + "\nMOTIF M1\nletter-probability matrix: w= 1\n0 0 1 0\n")
    with pytest.raises(MotifError, match=r"rna.meme:3: only the DNA alphabet ACGT is supported, got 'ALPHABET \"RNA\" "
                                         r"RNA-LIKE' with core symbols \['A', 'C', 'G', 'U'\]"):
        read_meme(path)


def test_not_a_meme_file(tmp_path):
    path = tmp_path / "x.meme"
    path.write_text("hello\n")
    with pytest.raises(MotifError, match="not a MEME motif file"):
        read_meme(path)


def test_reverse_complement():
    matrix = np.array([[1, 0], [0, 0], [0, 1], [0, 0.0]])  # "AG"
    np.testing.assert_array_equal(reverse_complement_matrix(matrix), [[0, 0], [1, 0], [0, 0], [0, 1]])  # "CT"


def test_jaspar_lookup_offline():
    gata = fetch_jaspar("MA0035")
    assert gata.name == "GATA1" and gata.probabilities.shape == (4, gata.width)
    assert fetch_jaspar("TAL1::TCF3").id.startswith("MA0091")
    assert len(fetch_jaspar_collection()) > 500
    with pytest.raises(MotifError, match="unknown JASPAR release"):
        fetch_jaspar("MA0035", release="JASPAR1999")


def test_resolve_motifs_mixes_ids_and_files(tmp_path):
    path = write_meme([Motif("U1", "user", np.full((4, 3), 0.25))], tmp_path / "u.meme")
    motifs = resolve_motifs(["MA0139", str(path)])
    assert [m.id for m in motifs] == ["MA0139.2", "U1"]


def test_indented_motif_lines_are_read_and_a_header_alone_is_no_motif_where_allowed(tmp_path):
    rows = "\n".join("  0.25 0.25 0.25 0.25" for _ in range(3))
    indented = tmp_path / "indented.meme"
    indented.write_text(f"MEME version 4\n\nALPHABET= ACGT\n\n  MOTIF m1 one\n  letter-probability matrix: w= 3\n"
                        f"{rows}\n  MOTIF m2\n  letter-probability matrix: w= 3\n{rows}\n")
    assert [(motif.id, motif.name) for motif in read_meme(indented)] == [("m1", "one"), ("m2", "m2")]
    # motifs.meme of a run that found no motif: refused as a database, no motifs for hits.
    empty = write_meme([], tmp_path / "none.meme")
    with pytest.raises(MotifError, match="no MOTIF entries found"):
        read_meme(empty)
    assert read_meme(empty, allow_empty=True) == []
    from genomatt.motifs.cwm_motifs import read_cwm_motifs

    assert read_cwm_motifs(empty) == []
