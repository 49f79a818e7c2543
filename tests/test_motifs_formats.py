import re

import numpy as np
import pytest

from genomatt.errors import MotifError
from genomatt.motifs.cwm_motifs import read_cwm_motifs
from genomatt.motifs.formats import (CwmMotif, Motif, read_jaspar, read_meme, read_motif_file,
                                     reverse_complement_matrix, write_meme)
from genomatt.motifs.jaspar import fetch_jaspar, fetch_jaspar_collection, resolve_motifs


def test_meme_round_trip(tmp_path):
    rng = np.random.default_rng(0)
    motifs = [Motif(f"M{i}", f"TF{i}", rng.dirichlet(np.ones(4), size=6 + i).T, sites=10) for i in range(3)]
    path = write_meme(motifs, tmp_path / "m.meme")
    back = read_meme(path)
    assert [(m.id, m.name, m.sites) for m in back] == [(m.id, m.name, m.sites) for m in motifs]
    for a, b in zip(motifs, back):
        np.testing.assert_allclose(a.probabilities, b.probabilities, atol=1e-5)


@pytest.mark.parametrize("motif_id, name, message", [
    ("my motif", "GATA1", r"motif id 'my motif': a MEME motif's id must be one word"),
    ("", "GATA1", r"motif id '': a MEME motif's id must be one word"),
    ("MA1", "GATA 1 long", r"motif name 'GATA 1 long': a MEME motif's name must be one word"),
    ("MA1", "GATA1\t2", r"motif name 'GATA1\\t2'"),
])
def test_meme_writer_refuses_ids_and_names_that_would_read_back_split(tmp_path, motif_id, name, message):
    with pytest.raises(MotifError, match=message):
        write_meme([Motif(motif_id, name, np.full((4, 3), 0.25))], tmp_path / "m.meme")
    assert not (tmp_path / "m.meme").exists()


@pytest.mark.parametrize("background", [[0.5, 0.5], [1, 1, 1, 1], [0.5, 0.5, -0.25, 0.25], [np.nan, 0.5, 0.25, 0.25]])
def test_meme_writer_refuses_a_background_that_is_not_four_probabilities(tmp_path, background):
    with pytest.raises(MotifError, match=r"background: expected 4 probabilities \(A, C, G, T\) summing to 1, got "):
        write_meme([Motif("M1", "M1", np.full((4, 3), 0.25))], tmp_path / "m.meme", background=np.array(background))
    path = write_meme([Motif("M1", "M1", np.full((4, 3), 0.25))], tmp_path / "m.meme", background=[0.3, 0.2, 0.2, 0.3])
    assert "A 0.300000 C 0.200000 G 0.200000 T 0.300000" in path.read_text()


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
    ("MOTIF A\nletter-probability matrix: w= 2\n1 0 0 0\n0 1 0 0\n0 0 1 0\n\n",
     r"bad.meme:7: motif A declares w=2 but has more matrix rows"),
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

    assert read_cwm_motifs(empty) == []


CWM = np.eye(4)[:, [0, 1, 2, 3, 0, 1]] * 0.5


@pytest.mark.parametrize("cwm, pwm, message", [
    (CWM.T, None, r"motif m: cwm: expected a \(4, W\) matrix .* got shape \(6, 4\) \(a \(W, 4\) matrix, positions "
                  r"first as tfmodisco-lite stores them\? transpose it\)"),
    (np.full((4, 6), np.nan), None, "motif m: cwm: 24 values are NaN or infinite"),
    (np.zeros((4, 6)), None, "motif m: cwm is all zero"),
    (np.zeros((4, 0)), None, r"cwm: expected a \(4, W\) matrix .*with W >= 1, got shape \(4, 0\)"),
    (np.full((2, 4, 6), 0.1), None, r"cwm: expected a \(4, W\) matrix .* got shape \(2, 4, 6\)"),
    (np.array([["a"] * 6] * 4), None, "cwm: expected a numeric"),
    (CWM, CWM[:, :4] + 0.1, r"motif m: pwm has shape \(4, 4\), expected that of its cwm \(4, 6\)"),
    (CWM, CWM.T, r"motif m: pwm: expected a \(4, W\) matrix .*transpose it"),
    (CWM, CWM - 0.2, "motif m: pwm has negative values"),
    (CWM, np.full((4, 6), np.inf), "motif m: pwm: 24 values are NaN or infinite"),
])
def test_a_cwm_motif_is_checked_when_made(cwm, pwm, message):
    with pytest.raises(MotifError, match=message):
        CwmMotif("m", cwm, pwm=pwm)


def test_a_cwm_motif_takes_array_likes_and_negative_cwms():
    motif = CwmMotif("m", (-CWM).tolist(), pwm=np.abs(CWM).astype(np.float32))
    assert isinstance(motif.cwm, np.ndarray) and motif.sign == -1 and motif.pwm.dtype == np.float32


def test_a_tfmodisco_lite_results_file_is_named_with_the_files_hits_takes(tmp_path):
    import h5py


    path = tmp_path / "modisco" / "GATA1.h5"
    path.parent.mkdir()
    with h5py.File(path, "w") as handle:
        handle.create_dataset("pos_patterns/pattern_0/contrib_scores", data=CWM.T)
    with pytest.raises(MotifError, match=r"GATA1.h5: a tfmodisco-lite results file .*`genomatt hits --motifs` takes "
                                         r"the motifs.h5 .* beside its modisco folder, or a MEME file \(`modisco meme "
                                         r"-t PFM`"):
        read_cwm_motifs(path)


@pytest.mark.parametrize("rows, message", [
    ("0.5 -0.2 0.1 0.0\n0.1 0.1 0.6 0.2\n", r":7: motif M1: a negative value -0.2, expected .*a contribution weight "
                                            r"matrix\? `modisco meme -t CWM` writes CWMs: give letter probabilities "
                                            r"\(`modisco meme -t PFM`\)"),
    ("0.01 0.02 0.01 0.0\n0.01 0.01 0.06 0.02\n", r":7: motif M1: probabilities sum to 0.040, .*a contribution weight"),
    ("25 25 40 10\n10 10 70 10\n", r":7: motif M1: probabilities sum to 100.000, expected 1; counts or percentages\? "
                                   r"give letter probabilities"),
    ("0.25 nan 0.25 0.25\n0.1 0.1 0.6 0.2\n", r":7: motif M1 has a NaN or infinite value"),
])
def test_matrices_of_contributions_or_counts_are_named_by_read_meme_and_read_cwm_motifs(tmp_path, rows, message):

    path = tmp_path / "m.meme"
    path.write_text(f"MEME version 5\n\nALPHABET= ACGT\n\nMOTIF M1\nletter-probability matrix: w= 2\n{rows}")
    for read in (read_meme, read_cwm_motifs):
        with pytest.raises(MotifError, match="m.meme" + message):
            read(path)


@pytest.mark.parametrize("text, message", [
    (">MA0035.4\tGata1\nA  [ 24 51 3 ]\nC  [ 10 2 0 ]\nG  [ 5 1 90 ]\nT  [ 61 46 7 ]\n",
     r"a JASPAR-format file: read it with read_jaspar or read_motif_file \(genomatt's commands read both\)"),
    (">AGATAA\tGATA1(Zf)/K562-GATA1-ChIP-Seq/Homer\t6.5\n0.9 0.05 0.03 0.02\n0.01 0.01 0.97 0.01\n",
     "a HOMER motif file: convert it to MEME, e.g. with the MEME suite's chen2meme"),
    ("AC  M00001\nXX\nID  V$MYOD_01\nXX\nP0      A      C      G      T\n01      1      2      2      0      S\n//\n",
     "a TRANSFAC file: convert it with the MEME suite's transfac2meme"),
])
def test_other_motif_formats_are_named_with_their_converter(tmp_path, text, message):
    path = tmp_path / "motifs.txt"
    path.write_text(text)
    with pytest.raises(MotifError, match=r"not a MEME motif file \(no 'MEME version' line\); it (looks like|is) "
                                         + message):
        read_meme(path)


@pytest.mark.parametrize("text", [
    # JASPAR's own format, a bundle of two with a blank line between, and its .pfm of bare counts.
    ">MA0035.4\tGata1\nA  [ 24 51 3 ]\nC  [ 10 2 0 ]\nG  [ 5 1 90 ]\nT  [ 61 46 7 ]\n\n"
    ">MA0140.3\tGATA1::TAL1\nA  [ 1 2 ]\nC  [ 1 2 ]\nG  [ 1 2 ]\nT  [ 7 4 ]\n",
    ">MA0035.4 Gata1\n24 51 3\n10 2 0\n5 1 90\n61 46 7\n",
])
def test_jaspar_format_files_are_read_as_probabilities(tmp_path, text):
    path = tmp_path / "motifs.jaspar"
    path.write_text(text)
    motifs = read_motif_file(path)
    assert motifs[0].id == "MA0035.4" and motifs[0].name == "Gata1" and motifs[0].sites == 100
    np.testing.assert_allclose(motifs[0].probabilities[:, 0], [0.24, 0.10, 0.05, 0.61])
    assert [motif.name for motif in read_cwm_motifs(path)] == [motif.name for motif in motifs]
    if len(motifs) == 2:
        assert motifs[1].name == "GATA1::TAL1" and motifs[1].probabilities.shape == (4, 2)


def test_a_missing_motif_file_is_named_not_looked_up_in_jaspar(tmp_path):
    for spec in ("missing.jaspar", "missing.pfm", str(tmp_path / "folder" / "GATA1")):
        with pytest.raises(MotifError, match=f"{re.escape(spec)}: motif file not found"):
            resolve_motifs([spec])


def test_jaspar_names_headers_and_cases_as_files_come(tmp_path):
    # A name of several words (one word where motifs are written), lowercase and indented rows, and an older
    # .pfm of the four rows alone, named by its file.
    path = tmp_path / "custom.jaspar"
    path.write_text(">MA9.1 GATA1 zinc finger\n  a [ 1 2 ]\n  c [ 1 2 ]\n  g [ 1 2 ]\n  t [ 7 4 ]\n")
    assert [(m.id, m.name) for m in read_motif_file(path)] == [("MA9.1", "GATA1_zinc_finger")]
    older = tmp_path / "MA0035.1 Gata1.pfm"
    older.write_text("1 2 3 4\n1 2 3 4\n1 2 3 4\n7 4 1 0\n")
    (motif,) = read_motif_file(older)
    assert motif.id == "MA0035.1_Gata1" and motif.probabilities.shape == (4, 4) and motif.sites == 10
    meme = tmp_path / "m.meme"
    meme.write_text("MEME version 5\n")
    with pytest.raises(MotifError, match=r"m.meme: not a JASPAR motif file \(a '>ID name' line, then four rows"):
        read_jaspar(meme)


@pytest.mark.parametrize("text, message", [
    (">MA1\nA [ 1 2 ]\nC [ 1 2 ]\nG [ 1 2 ]\n\n>MA2\nA [ 1 ]\nC [ 1 ]\nG [ 1 ]\nT [ 1 ]\n",
     r":1: motif MA1 has 3 rows, expected four rows of counts \(A, C, G, T\)"),
    (">MA1\nA [ 1 ]\nC [ 1 ]\nG [ 1 ]\nT [ 1 ]\n>MA1\nA [ 1 ]\nC [ 1 ]\nG [ 1 ]\nT [ 1 ]\n",
     r":6: motif MA1 is given again \(first at line 1\); give each matrix once"),
    (">MA1\nA [ 1 2 ]\nC [ 1 2 ]\nT [ 1 2 ]\nG [ 1 2 ]\n", r":4: expected the row of G \(rows A, C, G, T\)"),
    (">MA1\nA [ 1 2 ]\nC [ 1 2 ]\nG [ 1 ]\nT [ 1 2 ]\n", r":2: the rows of motif MA1 have different lengths"),
    (">MA1\nA [ 1 -2 ]\nC [ 1 2 ]\nG [ 1 2 ]\nT [ 1 2 ]\n", r":2: motif MA1: matrix values must be finite and non-neg"),
])
def test_a_malformed_jaspar_matrix_is_named_by_its_line(tmp_path, text, message):
    path = tmp_path / "m.jaspar"
    path.write_text(text)
    with pytest.raises(MotifError, match=re.escape(str(path)) + message):
        read_jaspar(path)
    with pytest.raises(MotifError, match=re.escape(str(path)) + message):
        read_motif_file(path)
