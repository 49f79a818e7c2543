import contextlib
import gzip
import logging
import os
import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from genomatt.errors import BedFormatError, FastaError, SequenceError
from genomatt.fasta import read_chrom_sizes
from genomatt.genome import decode_one_hot, load_regions, one_hot_encode, read_bed, resize, validate_regions
from genomatt.store import read_regions, write_store


def write(path, text):
    path.write_text(text)
    return path


# --- read_bed ---------------------------------------------------------------------------------------------

def test_read_bed3_with_headers(tmp_path):
    bed = write(tmp_path / "a.bed", "track name=x\nbrowser position chr1\n# comment\n\nchr1\t10\t20\nchr2\t0\t5\n")
    frame = read_bed(bed)
    assert list(frame.columns) == ["chrom", "start", "end", "name"]
    assert frame["start"].tolist() == [10, 0]
    assert frame["name"].tolist() == ["chr1:10-20", "chr2:0-5"]


def test_read_bed6_and_extra_columns(tmp_path):
    bed = write(tmp_path / "a.bed", "chr1\t10\t20\tpeak1\t5.5\t-\textra\nchr1\t30\t40\t.\t.\t+\textra\n")
    frame = read_bed(bed)
    assert frame["name"].tolist() == ["peak1", "chr1:30-40"]
    assert frame["strand"].tolist() == ["-", "+"]
    assert frame["score"].iloc[0] == 5.5 and np.isnan(frame["score"].iloc[1])


def test_read_narrowpeak_gzipped(tmp_path):
    path = tmp_path / "peaks.narrowPeak.gz"
    with gzip.open(path, "wt") as handle:
        handle.write("chr1\t100\t200\tp1\t0\t.\t3.0\t5.0\t2.0\t30\n")
        handle.write("chr1\t300\t400\tp2\t0\t.\t3.0\t5.0\t2.0\t-1\n")
    frame = read_bed(path)
    assert frame["summit"].tolist() == [30, -1]
    windows = resize(frame, 10)
    assert windows["start"].tolist() == [125, 345]
    assert (windows["end"] - windows["start"]).eq(10).all()
    assert windows["region_start"].tolist() == [100, 300]


def test_ten_columns_are_narrowpeak_only_with_numbers_in_columns_7_to_9(tmp_path, caplog):
    encode = write(tmp_path / "ENCFF000AAA.bed", "chr1\t100\t200\tp1\t0\t.\t3.0\t5.0\t-1\t30\n")
    with caplog.at_level(logging.INFO, logger="genomatt.genome"):
        assert read_bed(encode)["summit"].tolist() == [30]
    assert "ENCFF000AAA.bed: 10 columns, 7-9 numeric: read as narrowPeak" in caplog.text
    cut_bed12 = write(tmp_path / "cut.bed", "chr1\t100\t300\tr1\t0\t+\t100\t300\t255,0,0\t2\n")
    caplog.clear()
    frame = read_bed(cut_bed12)
    assert "summit" not in frame.columns
    assert resize(frame, 200)[["start", "end"]].values.tolist() == [[100, 300]]
    assert "cut.bed: 10 columns, not all of 7-9 numbers: read as BED, columns 7 on ignored" in caplog.text


def test_idr_output_is_narrowpeak_by_its_name_and_otherwise_read_as_bed_with_a_warning(tmp_path, caplog):
    # IDR writes the narrowPeak columns, then the local and global IDR and each replicate's peak.
    line = "chr1\t100\t300\tp1\t1000\t.\t8.5\t-1\t4.2\t40\t2.1\t1.9\t100\t290\t7\t38\t110\t300\t6\t45\n"
    named = write(tmp_path / "idr.narrowPeak", line)
    assert read_bed(named)["summit"].tolist() == [40]
    other = write(tmp_path / "idr.txt", line)
    with caplog.at_level(logging.WARNING, logger="genomatt.genome"):
        frame = read_bed(other)
    assert "summit" not in frame.columns
    assert ("idr.txt: 20 columns: read as BED, columns 7 on ignored and windows centred on the regions' midpoints; "
            "a narrowPeak's summits (column 10) are used when the file's name contains 'narrowPeak'") in caplog.text


def test_byte_order_mark_is_not_part_of_the_first_chromosome(tmp_path):
    bed = tmp_path / "notepad.bed"
    bed.write_bytes("chr1\t10\t20\r\n".encode("utf-8-sig"))
    assert read_bed(bed)["chrom"].tolist() == ["chr1"]
    with gzip.open(tmp_path / "notepad.bed.gz", "wb") as handle:
        handle.write("chr1\t10\t20\n".encode("utf-8-sig"))
    assert read_bed(tmp_path / "notepad.bed.gz")["chrom"].tolist() == ["chr1"]


@pytest.mark.parametrize(
    "line, expected",
    [
        ("chr1\t10\n", "expected at least 3 tab-separated columns"),
        ("chr1\tten\t20\n", "start (column 2) must be an integer, got 'ten'"),
        ("chr1\t10\t2.5\n", "end (column 3) must be an integer"),
        ("chr1\t20\t20\n", "start must be < end, got start=20 end=20"),
        ("chr1\t30\t20\n", "start must be < end"),
        ("chr1\t-5\t20\n", "start must be >= 0, got -5"),
        ("chr1\t10\t20\tn\tx\n", "score (column 5) must be a number"),
        ("chr1\t10\t20\tn\t0\t*\n", "strand (column 6) must be one of"),
        ("chr1\t100\t200\tp\t0\t.\t1\t1\t1\t150\n", "summit offset 150 lies outside the interval of length 100"),
        ("chr1\t100\t200\tp\t0\t.\t1\t1\t1\tmid\n", "summit offset (narrowPeak column 10) must be an integer"),
        ("chr1\t1_000\t2000\n", "start (column 2) must be an integer, got '1_000'"),
        ("chr1\t10\t99999999999999999999\n", "end (column 3) 99999999999999999999 is larger than any chromosome"),
        ("chr1\t9223372036854775000\t9223372036854775806\n", "start (column 2) 9223372036854775000 is larger than"),
    ],
)
def test_read_bed_invalid_lines_name_file_and_line(tmp_path, line, expected):
    bed = write(tmp_path / "bad.bed", "# header\nchr1\t1\t2\n" if "\t1\t1\t1\t" not in line else "# header\n")
    bed.write_text(bed.read_text() + line)
    with pytest.raises(BedFormatError) as info:
        read_bed(bed)
    message = str(info.value)
    assert expected in message
    line_number = bed.read_text().splitlines().index(line.rstrip("\n")) + 1
    assert f"{bed}:{line_number}:" in message


def test_read_bed_narrowpeak_with_wrong_column_count(tmp_path):
    bed = write(tmp_path / "x.narrowPeak", "chr1\t1\t2\tp\t0\t.\t1\t1\t1\t0\nchr1\t5\t9\n")
    with pytest.raises(BedFormatError, match=r"x.narrowPeak:2: narrowPeak lines have at least 10 columns, got 3"):
        read_bed(bed)


def test_a_bed_named_narrowpeak_is_read_as_the_bed_it_is(tmp_path, caplog):
    # peaks.narrowPeak.bed of 6 columns was refused: "narrowPeak lines have at least 10 columns, got 6".
    bed = write(tmp_path / "peaks.narrowPeak.bed", "chr1\t1\t50\tp\t0\t+\nchr1\t100\t200\tq\t0\t-\n")
    with caplog.at_level("WARNING", logger="genomatt"):
        table = read_bed(bed)
    assert table["end"].tolist() == [50, 200] and "summit" not in table
    assert "named narrowPeak, but its first line has 6 columns: read as BED" in caplog.text


def test_narrowpeak_lines_after_a_first_bed_line_are_refused_not_read_without_their_summits(tmp_path):
    bed = write(tmp_path / "mixed.bed", "chr1\t1\t50\n# peaks\nchr1\t100\t812\tp\t0\t.\t3.0\t5.0\t-1\t362\n")
    with pytest.raises(BedFormatError, match=r"mixed.bed:3: a narrowPeak line .* by its line 1 of 3 columns, whose "
                                             r"summits \(column 10\) would be ignored"):
        read_bed(bed)
    # A BED6 line beside BED3 lines is no narrowPeak line.
    assert len(read_bed(write(tmp_path / "bed6.bed", "chr1\t1\t50\nchr1\t60\t90\tr\t0\t+\n"))) == 2


@pytest.mark.parametrize("text", ["", "track name=empty\n# nothing\n\n"])
def test_read_bed_empty_is_an_error(tmp_path, text):
    with pytest.raises(BedFormatError, match="no regions found"):
        read_bed(write(tmp_path / "empty.bed", text))


def test_read_bed_missing_and_binary_files(tmp_path):
    with pytest.raises(BedFormatError, match="BED file not found"):
        read_bed(tmp_path / "nope.bed")
    binary = tmp_path / "binary.bed"
    binary.write_bytes(b"\xff\xfe\x00\x01" * 10)
    with pytest.raises(BedFormatError, match="cannot read as a text BED file"):
        read_bed(binary)


def test_validate_regions_frame_errors():
    with pytest.raises(BedFormatError, match="missing columns"):
        validate_regions(pd.DataFrame({"chrom": ["chr1"], "start": [1]}))
    with pytest.raises(BedFormatError, match="row 1"):
        validate_regions(pd.DataFrame({"chrom": ["chr1", "chr1"], "start": [1, 9], "end": [5, 3]}))
    with pytest.raises(BedFormatError, match="positive number"):
        resize(pd.DataFrame({"chrom": ["chr1"], "start": [1], "end": [5]}), 0)


@pytest.mark.parametrize("width", [2.5, "100", None, True, -5])
def test_a_window_width_must_be_a_positive_integer(small_genome, width):
    with pytest.raises(BedFormatError, match=rf"window width must be a positive number of bp \(an integer\), got "
                                             rf"{re.escape(repr(width))}"):
        resize(pd.DataFrame({"chrom": ["chr1"], "start": [1], "end": [5]}), width)
    if width is not None:
        with pytest.raises(BedFormatError, match="window width must be a positive number of bp"):
            load_regions(small_genome.fasta, small_genome.regions_bed, width=width, progress=False)


def test_resize_midpoint_odd_width():
    frame = pd.DataFrame({"chrom": ["chr1"], "start": [100], "end": [201]})
    window = resize(frame, 5)
    assert (window["start"].item(), window["end"].item()) == (148, 153)


# --- one-hot ----------------------------------------------------------------------------------------------

def test_one_hot_encode_alphabet_case_and_other_codes():
    X = one_hot_encode(["ACGTN", "acgtR"])
    assert X.shape == (2, 4, 5) and X.dtype == np.float32
    np.testing.assert_array_equal(X[0, :, :4], np.eye(4, dtype=np.float32))
    np.testing.assert_array_equal(X[0], X[1])
    assert X[0, :, 4].sum() == 0
    assert one_hot_encode("GATTACA").shape == (4, 7)
    assert decode_one_hot(X) == ["ACGTN", "ACGTN"]
    assert decode_one_hot(one_hot_encode("ACGN")) == "ACGN"
    with pytest.raises(SequenceError, match=r"expected one-hot of shape \(N, 4, L\) or \(4, L\), got \(5, 4\)"):
        decode_one_hot(X[0].T)
    for damaged in (X * 0.5, np.where(X == 1, np.nan, X), X + X[:, [1, 2, 3, 0]]):
        with pytest.raises(SequenceError, match="expected one-hot: 0 and 1 only, at most one base per position"):
            decode_one_hot(damaged)


def test_one_hot_encode_every_iupac_code_is_zero():
    iupac = "NRYSWKMBDHVnryswkmbdhv-.*"
    assert one_hot_encode(iupac).sum() == 0


def test_one_hot_encode_errors():
    with pytest.raises(SequenceError, match="same length"):
        one_hot_encode(["ACG", "AC"])
    with pytest.raises(SequenceError, match="no sequences"):
        one_hot_encode([])


# --- load_regions -----------------------------------------------------------------------------------------

def test_load_regions_matches_fasta_text(small_genome):
    regions, X = load_regions(small_genome.fasta, small_genome.regions_bed, width=150, progress=False)
    assert X.shape == (len(regions), 4, 150)
    sizes = read_chrom_sizes(small_genome.fasta)
    text = {}
    name = None
    for line in small_genome.fasta.read_text().splitlines():
        if line.startswith(">"):
            name = line[1:]
            text[name] = []
        else:
            text[name].append(line)
    text = {key: "".join(value) for key, value in text.items()}
    assert {key: len(value) for key, value in text.items()} == sizes
    for row, onehot in zip(regions.head(5).itertuples(), X[:5]):
        assert decode_one_hot(onehot[None])[0] == text[row.chrom][row.start:row.end]


def test_backends_agree_including_windows_off_both_ends(small_genome, tmp_path):
    sizes = read_chrom_sizes(small_genome.fasta)
    chrom, length = next(iter(sizes.items()))
    frame = pd.DataFrame({
        "chrom": [chrom, chrom, chrom, "chr2"],
        "start": [0, length - 10, 500, 1000],
        "end": [20, length, 520, 1020],
        "name": ["left", "right", "inside", "other"],
    })
    regions_a, X_a = load_regions(small_genome.fasta, frame, width=100, backend="pyfaidx", progress=False)
    regions_b, X_b = load_regions(small_genome.fasta, frame, width=100, backend="pysam", progress=False)
    np.testing.assert_array_equal(X_a, X_b)
    pd.testing.assert_frame_equal(regions_a, regions_b)
    assert regions_a["padded_left"].tolist() == [40, 0, 0, 0]
    assert regions_a["padded_right"].tolist() == [0, 45, 0, 0]
    assert X_a[0, :, :40].sum() == 0 and X_a[0, :, 40:].sum(axis=0).min() == 1
    assert X_a[1, :, 55:].sum() == 0 and X_a[1, :, :55].sum(axis=0).min() == 1
    assert regions_a["n_bases"].tolist() == [40, 45, 0, 0]


def test_pysam_reads_bgzip_fasta(small_genome, tmp_path):
    import pysam

    plain = tmp_path / "genome.fa"
    plain.write_bytes(small_genome.fasta.read_bytes())
    compressed = pysam.tabix_compress(str(plain), str(tmp_path / "genome.fa.gz"))
    del compressed
    _, X_plain = load_regions(small_genome.fasta, small_genome.regions_bed, width=64, progress=False)
    _, X_gz = load_regions(tmp_path / "genome.fa.gz", small_genome.regions_bed, width=64, backend="pysam",
                           progress=False)
    np.testing.assert_array_equal(X_plain, X_gz)


def test_missing_chromosome_error_and_skip(small_genome, caplog):
    frame = pd.DataFrame({"chrom": ["chr1", "chrUn_x", "chrM"], "start": [100, 0, 0], "end": [200, 10, 10]})
    with pytest.raises(FastaError) as info:
        load_regions(small_genome.fasta, frame, width=50, progress=False)
    message = str(info.value)
    assert "['chrM', 'chrUn_x']" in message and "it has: chr1, chr2, chr3" in message
    with caplog.at_level(logging.WARNING):
        regions, X = load_regions(small_genome.fasta, frame, width=50, on_missing="skip", progress=False)
    assert len(regions) == 1 and X.shape == (1, 4, 50)
    assert regions.attrs["skipped"]["chrom"].tolist() == ["chrUn_x", "chrM"]
    assert "skipping 2 regions" in caplog.text


def test_load_regions_requires_equal_lengths_without_width(small_genome):
    frame = pd.DataFrame({"chrom": ["chr1", "chr1"], "start": [0, 100], "end": [10, 120]})
    with pytest.raises(BedFormatError, match="different lengths"):
        load_regions(small_genome.fasta, frame, progress=False)


def test_missing_or_broken_fasta(tmp_path, small_genome):
    with pytest.raises(FastaError, match="FASTA file not found"):
        load_regions(tmp_path / "none.fa", small_genome.regions_bed, width=10)
    broken = write(tmp_path / "broken.fa", "this is not a fasta\n>chr1\nAC\n>chr2\nGT\n")
    with pytest.raises(FastaError, match="cannot open FASTA"):
        load_regions(broken, small_genome.regions_bed, width=10)


def test_n_bases_in_fasta_are_zero_columns(tmp_path):
    fasta = write(tmp_path / "n.fa", ">chrA\nACGTNNNNacgt\n")
    regions, X = load_regions(fasta, pd.DataFrame({"chrom": ["chrA"], "start": [0], "end": [12]}), progress=False)
    assert regions["n_bases"].item() == 4
    assert decode_one_hot(X)[0] == "ACGTNNNNACGT"


def test_one_hot_encode_compact_dtype_equals_float():
    seqs = ["ACGTNacgtn", "TTTTGGGGCC"]
    np.testing.assert_array_equal(one_hot_encode(seqs, np.int8), one_hot_encode(seqs).astype(np.int8))
    assert one_hot_encode(seqs, np.int8).dtype == np.int8


def _rewrap(source, target, width):
    """Copy a FASTA with its sequence lines re-wrapped to ``width`` columns."""
    records, name = {}, None
    for line in source.read_text().splitlines():
        if line.startswith(">"):
            name = line
            records[name] = []
        else:
            records[name].append(line)
    text = "".join(f"{name}\n" + "\n".join(("".join(lines))[i:i + width] for i in range(0, len("".join(lines)), width))
                   + "\n" for name, lines in records.items())
    target.write_text(text)


@pytest.mark.parametrize("backend", ["pyfaidx", "pysam"])
def test_an_index_older_than_its_fasta_is_rebuilt(tmp_path, small_genome, backend):
    fasta = tmp_path / "genome.fa"
    _rewrap(small_genome.fasta, fasta, 60)
    expected = load_regions(fasta, small_genome.regions_bed, width=100, backend=backend, progress=False)[1]
    index = Path(f"{fasta}.fai")
    assert index.is_file()
    # The FASTA re-wrapped to 80 columns after indexing: the old index points at the wrong bytes.
    _rewrap(small_genome.fasta, fasta, 80)
    os.utime(index, ns=(index.stat().st_mtime_ns - 10**9,) * 2)
    _, onehot = load_regions(fasta, small_genome.regions_bed, width=100, backend=backend, progress=False)
    np.testing.assert_array_equal(onehot, expected)
    assert index.stat().st_mtime_ns >= fasta.stat().st_mtime_ns
    assert sorted(path.name for path in tmp_path.iterdir()) == ["genome.fa", "genome.fa.fai"]


@pytest.fixture
def user_cache(tmp_path, monkeypatch):
    """The cache folder genomatt builds indexes in when it cannot write them beside a FASTA (not the user's)."""
    cache = tmp_path / "cache"
    monkeypatch.setenv("XDG_CACHE_HOME", str(cache))
    return cache


@contextlib.contextmanager
def read_only_folder(folder, populate):
    """``folder`` holding what ``populate(folder)`` writes, then read-only.

    As root a folder's mode does not stop writes, so the folder is then a tmpfs remounted read-only.
    """
    if os.geteuid() == 0:
        from faults import mounted_tmpfs

        with mounted_tmpfs(folder, size="8m") as disk:
            populate(disk)
            subprocess.run(["mount", "-o", "remount,ro", str(disk)], check=True)
            yield disk
        return
    folder.mkdir()
    populate(folder)
    folder.chmod(0o555)
    try:
        if os.access(folder, os.W_OK):
            pytest.skip("a folder of mode 0o555 can still be written here")
        yield folder
    finally:
        folder.chmod(0o755)


def _cached_files(cache):
    return sorted(path.name for path in (cache / "genomatt" / "fasta-index").glob("*/*"))


@pytest.mark.parametrize("backend", ["pyfaidx", "pysam"])
@pytest.mark.parametrize("name", ["genome.fa", "genome.fa.gz"])
def test_a_fasta_in_a_read_only_folder_is_indexed_in_the_cache(tmp_path, small_genome, user_cache, caplog, backend,
                                                              name):
    import pysam

    def populate(folder):
        if name.endswith(".gz"):
            pysam.tabix_compress(str(small_genome.fasta), str(folder / name))
        else:
            (folder / name).write_bytes(small_genome.fasta.read_bytes())

    expected = load_regions(small_genome.fasta, small_genome.regions_bed, width=100, progress=False)[1]
    with read_only_folder(tmp_path / "shared", populate) as shared:
        with caplog.at_level(logging.INFO, logger="genomatt.fasta"):
            _, onehot = load_regions(shared / name, small_genome.regions_bed, width=100, backend=backend,
                                     progress=False)
        np.testing.assert_array_equal(onehot, expected)
        assert f"{name}: cannot write its index beside it (" in caplog.text
        assert f"built it in {user_cache / 'genomatt' / 'fasta-index'}" in caplog.text
        assert _cached_files(user_cache) == [f"{name}.fai"] + ([f"{name}.gzi"] if name.endswith(".gz") else [])
        assert os.listdir(shared) == [name]
        caplog.clear()
        with caplog.at_level(logging.INFO, logger="genomatt.fasta"):
            _, onehot = load_regions(shared / name, small_genome.regions_bed, width=100, backend=backend,
                                     progress=False)
        np.testing.assert_array_equal(onehot, expected)
        assert "cannot write" not in caplog.text and f"{name}: using its index in {user_cache}" in caplog.text


def _read_from_read_only_copy(tmp_path, small_genome, populate, backend, caplog) -> None:
    """Read the regions from the copy of the genome ``populate`` writes into a read-only folder: the same
    one-hot as from the original."""
    expected = load_regions(small_genome.fasta, small_genome.regions_bed, width=100, progress=False)[1]
    with read_only_folder(tmp_path / "shared", populate) as shared:
        with caplog.at_level(logging.WARNING, logger="genomatt.fasta"):
            _, onehot = load_regions(shared / "genome.fa", small_genome.regions_bed, width=100, backend=backend,
                                     progress=False)
    np.testing.assert_array_equal(onehot, expected)


@pytest.mark.parametrize("backend", ["pyfaidx", "pysam"])
def test_a_valid_index_older_than_its_fasta_in_a_read_only_folder_is_checked_and_used(tmp_path, small_genome,
                                                                                       user_cache, caplog, backend):
    def populate(folder):
        # A genome copied without its file times: the index, unchanged, is now older than the FASTA.
        (folder / "genome.fa").write_bytes(small_genome.fasta.read_bytes())
        index = folder / "genome.fa.fai"
        index.write_bytes(Path(f"{small_genome.fasta}.fai").read_bytes())
        os.utime(index, ns=((folder / "genome.fa").stat().st_mtime_ns - 10**9,) * 2)

    _read_from_read_only_copy(tmp_path, small_genome, populate, backend, caplog)
    assert "genome.fa: cannot rebuild its index beside it (" in caplog.text
    assert "genome.fa.fai, older than the FASTA but matching its records" in caplog.text
    assert not user_cache.exists()


@pytest.mark.parametrize("backend", ["pyfaidx", "pysam"])
def test_a_stale_index_in_a_read_only_folder_is_rebuilt_in_the_cache(tmp_path, small_genome, user_cache, caplog,
                                                                     backend):
    def populate(folder):
        fasta = folder / "genome.fa"
        _rewrap(small_genome.fasta, fasta, 60)
        read_chrom_sizes(fasta)
        # Re-wrapped to 80 columns after indexing: the old index points at the wrong bytes.
        _rewrap(small_genome.fasta, fasta, 80)
        index = Path(f"{fasta}.fai")
        os.utime(index, ns=(fasta.stat().st_mtime_ns - 10**9,) * 2)

    _read_from_read_only_copy(tmp_path, small_genome, populate, backend, caplog)
    assert "genome.fa.fai does not match" in caplog.text
    assert "genome.fa: cannot write its index beside it (" in caplog.text
    assert _cached_files(user_cache) == ["genome.fa.fai"]


def test_an_index_that_can_be_written_nowhere_is_one_line(tmp_path, small_genome, monkeypatch):
    def populate(folder):
        (folder / "genome.fa").write_bytes(small_genome.fasta.read_bytes())

    with read_only_folder(tmp_path / "shared", populate) as shared:
        monkeypatch.setenv("XDG_CACHE_HOME", str(shared / "cache"))
        with pytest.raises(FastaError, match=r"genome.fa: cannot write its index beside it \([^)]+\) nor in "
                                             r"\S+/shared/cache/genomatt/fasta-index/\w+ \([^)]+\); set "
                                             r"XDG_CACHE_HOME to a writable folder$"):
            read_chrom_sizes(shared / "genome.fa")


def _two_records(path):
    """A FASTA of chr1 (5000 bp) and chr2 (3000 bp) in 60-column lines; return its text per record."""
    random = np.random.default_rng(3)
    records = {name: "".join(random.choice(list("ACGT"), length)) for name, length in [("chr1", 5000), ("chr2", 3000)]}
    path.write_text("".join(f">{name}\n" + "".join(seq[i:i + 60] + "\n" for i in range(0, len(seq), 60))
                            for name, seq in records.items()))
    return records


@pytest.mark.parametrize("backend", ["pyfaidx", "pysam"])
def test_an_index_newer_than_its_fasta_that_does_not_match_it_is_rebuilt(tmp_path, caplog, backend):
    fasta = tmp_path / "genome.fa"
    records = _two_records(fasta)
    index = Path(f"{fasta}.fai")
    # chr1 claimed 9000 bp long: its windows would read chr2's header and bases.
    index.write_text("chr1\t9000\t6\t60\t61\nchr2\t3000\t5096\t60\t61\n")
    with caplog.at_level(logging.WARNING, logger="genomatt.fasta"):
        assert read_chrom_sizes(fasta, backend) == {"chr1": 5000, "chr2": 3000}
    assert "genome.fa.fai does not match" in caplog.text and "rebuilding the index" in caplog.text
    assert index.read_text().splitlines()[0].split("\t")[:2] == ["chr1", "5000"]
    frame = pd.DataFrame({"chrom": ["chr1"], "start": [4950], "end": [5050]})
    regions, onehot = load_regions(fasta, frame, backend=backend, progress=False)
    assert decode_one_hot(onehot)[0] == records["chr1"][4950:] + "N" * 50
    assert regions["padded_right"].tolist() == [50]


def _bgzip_version(folder, records, backend):
    """A bgzip FASTA of ``records`` (several blocks) indexed with ``backend``; return its path."""
    import pysam

    plain = folder / "genome.fa"
    plain.write_text("".join(f">{name}\n" + "".join(seq[i:i + 60] + "\n" for i in range(0, len(seq), 60))
                             for name, seq in records.items()))
    pysam.tabix_compress(str(plain), str(folder / "genome.fa.gz"))
    plain.unlink()
    read_chrom_sizes(folder / "genome.fa.gz", backend)
    return folder / "genome.fa.gz"


@pytest.mark.parametrize("backend", ["pyfaidx", "pysam"])
@pytest.mark.parametrize("stale", [[".fai"], [".fai", ".gzi"]], ids=["fai", "fai-and-gzi"])
def test_a_bgzip_fasta_replaced_under_a_newer_index_of_its_old_version_is_reindexed(tmp_path, caplog, backend, stale):
    # A new version of the genome (600 bp cut from chr1) copied beside the index of the old one, whose file
    # times are newer (cp -p, rsync -t, an archive): the index's offsets would read the wrong bases.
    random = np.random.default_rng(5)
    old = {name: "".join(random.choice(list("ACGT"), n)) for name, n in [("chr1", 150_000), ("chr2", 90_000)]}
    new = {"chr1": old["chr1"][:60_000] + old["chr1"][60_600:], "chr2": old["chr2"]}
    (tmp_path / "old").mkdir()
    (tmp_path / "new").mkdir()
    old_fasta = _bgzip_version(tmp_path / "old", old, backend)
    fasta = _bgzip_version(tmp_path / "new", new, backend)
    for suffix in stale:
        shutil.copy(f"{old_fasta}{suffix}", f"{fasta}{suffix}")
        os.utime(f"{fasta}{suffix}", ns=(fasta.stat().st_mtime_ns + 10**9,) * 2)
    with caplog.at_level(logging.WARNING, logger="genomatt.fasta"):
        assert read_chrom_sizes(fasta, backend) == {"chr1": 149_400, "chr2": 90_000}
    assert "genome.fa.gz.fai does not match" in caplog.text and "rebuilding the index" in caplog.text
    frame = pd.DataFrame({"chrom": ["chr1", "chr2"], "start": [100_000, 80_000], "end": [100_100, 80_100]})
    _, onehot = load_regions(fasta, frame, backend=backend, progress=False)
    assert decode_one_hot(onehot) == [new["chr1"][100_000:100_100], new["chr2"][80_000:80_100]]
    # The rebuilt index matches: read again, it is kept.
    caplog.clear()
    built = Path(f"{fasta}.fai").stat().st_mtime_ns
    with caplog.at_level(logging.INFO, logger="genomatt.fasta"):
        read_chrom_sizes(fasta, backend)
    assert caplog.text == "" and Path(f"{fasta}.fai").stat().st_mtime_ns == built


@pytest.mark.parametrize("backend", ["pyfaidx", "pysam"])
@pytest.mark.parametrize("text", [
    ">chr1 a description\nACGTACGT\nACG\n\n>chr2\nGGGG\n",
    ">chr1\r\nACGTACGT\r\nACG\r\n>chr2\r\nGGGG",
    ">chr1\nACGTACGTACG\n>chr2\nGGGG\n",
    ">chr1\nACGTACGT\n>empty\n>chr2\nGGGG\n",
], ids=["blank-line-and-description", "crlf-no-final-newline", "one-line-records", "record-without-bases"])
def test_an_index_that_matches_its_fasta_is_not_rebuilt(tmp_path, caplog, backend, text):
    fasta = tmp_path / "genome.fa"
    fasta.write_bytes(text.encode())
    try:
        sizes = read_chrom_sizes(fasta, backend)
    except FastaError:
        pytest.skip(f"{backend} does not index this FASTA")
    index = Path(f"{fasta}.fai")
    built = index.stat().st_mtime_ns
    with caplog.at_level(logging.INFO, logger="genomatt.fasta"):
        assert read_chrom_sizes(fasta, backend) == sizes
    assert caplog.text == "" and index.stat().st_mtime_ns == built


@pytest.mark.parametrize("backend", ["pyfaidx", "pysam"])
# With an index that exists (samtools'), a record's first sequence line is checked; building one, every line.
@pytest.mark.parametrize("blank, line, samtools_index", [
    (blank, 2, samtools) for blank in ("trailing-space", "trailing-tab", "blocks-of-ten") for samtools in (False, True)
] + [("a later line", 5, False), ("the last line", 11, False)])
def test_blanks_in_sequence_lines_are_refused_not_read_as_bases(tmp_path, backend, blank, line, samtools_index):
    rng = np.random.default_rng(0)
    sequence = "".join(rng.choice(list("ACGT"), 600))
    lines = [sequence[i:i + 60] for i in range(0, 600, 60)]
    if blank == "blocks-of-ten":
        lines = [" ".join(line[j:j + 10] for j in range(0, 60, 10)) for line in lines]
    elif blank.startswith("trailing"):
        lines = [line + (" " if blank == "trailing-space" else "\t") for line in lines]
    else:  # one blank inside a line of the same length as the others, or after the last base
        where = 3 if blank == "a later line" else 9
        lines[where] = lines[where][:30] + " " + lines[where][31:] if where == 3 else lines[where][:-1] + " "
    fasta = tmp_path / "genome.fa"
    fasta.write_text(">chr1 a description\n" + "\n".join(lines) + "\n")
    if samtools_index:  # htslib's index, which reads the bases alone
        import pysam

        pysam.faidx(str(fasta))
    with pytest.raises(FastaError, match=re.escape(f"{fasta}:{line}: a sequence line holds a space or tab, which an "
                                                   "index reads as bases")):
        load_regions(fasta, pd.DataFrame({"chrom": ["chr1"], "start": [100], "end": [200]}), backend=backend,
                     progress=False)


def test_the_scan_for_blanks_follows_lines_across_chunks(tmp_path, monkeypatch):
    import genomatt.fasta

    # Chunks of 7 bytes: header lines (with their description's spaces) and sequence lines both cross chunks.
    monkeypatch.setattr(genomatt.fasta, "_SCAN_BYTES", 7)
    fasta = tmp_path / "genome.fa"
    fasta.write_text(">chr1 a long description\nACGTACGTACGTACGT\nACGT\n>chr2 more words here\nACGTACGTAC GT\n")
    assert genomatt.fasta._first_blank_in_sequence(fasta, compressed=False) == 5
    fasta.write_text(">chr1 a long description\nACGTACGTACGTACGT\nACGT\n>chr2 more words here\nACGTACGTACGT\n")
    assert genomatt.fasta._first_blank_in_sequence(fasta, compressed=False) is None
    # Text before the first header is not a sequence line (the indexers refuse it, naming it).
    fasta.write_text("not a fasta at all\n>chr1 x\nACGT\nAC GT\n")
    assert genomatt.fasta._first_blank_in_sequence(fasta, compressed=False) == 4


@pytest.mark.parametrize("backend", ["pyfaidx", "pysam"])
@pytest.mark.parametrize("content, message", [
    (b"\x43\x27\x41\x1a" + bytes(60), "a 2bit genome, not a FASTA; convert it with `twoBitToFa genome.fa"),
    (b"\xef\xbb\xbf>chr1\nACGT\n", "starts with a byte-order mark (as some Windows editors save text)"),
    # Read as records of no bases: every region then lay "past the end of its chromosome".
    (b">chr1\rACGTACGT\rACGT\r>chr2\rACGT\r", "its lines end in a carriage return alone (classic Mac OS"),
], ids=["2bit", "byte-order-mark", "carriage-returns"])
def test_files_that_are_not_a_plain_fasta_are_named_with_the_fix(tmp_path, backend, content, message):
    fasta = tmp_path / "genome.fa"
    fasta.write_bytes(content)
    with pytest.raises(FastaError, match=re.escape(f"{fasta}: {message}")):
        read_chrom_sizes(fasta, backend)


@pytest.mark.parametrize("backend", ["pyfaidx", "pysam"])
def test_a_plain_gzip_fasta_is_refused_with_how_to_fix_it(tmp_path, small_genome, backend):
    fasta = tmp_path / "genome.fa.gz"
    with gzip.open(fasta, "wb") as handle:
        handle.write(small_genome.fasta.read_bytes())
    with pytest.raises(FastaError, match=r"genome.fa.gz: compressed with gzip, not bgzip, .*\(`gunzip genome.fa.gz`\)"
                                         r".* `bgzip genome.fa`$"):
        load_regions(fasta, small_genome.regions_bed, width=100, backend=backend, progress=False)
    assert os.listdir(tmp_path) == ["genome.fa.gz"]


@pytest.mark.parametrize("backend", ["pyfaidx", "pysam"])
@pytest.mark.parametrize("name", ["genome.fa", "genome.fa.gz"])
def test_duplicate_record_names_are_refused_by_both_backends(tmp_path, backend, name):
    import pysam

    plain = tmp_path / "genome.fa"
    plain.write_text(">chr1\nACGTACGT\n>chr2\nGGGG\n>chr1 again\nTTTT\n")
    if name.endswith(".gz"):
        pysam.tabix_compress(str(plain), str(tmp_path / name))
        plain.unlink()
    message = rf"{name}: record name 'chr1' appears more than once; each record of a FASTA needs its own name"
    with pytest.raises(FastaError, match=message):
        read_chrom_sizes(tmp_path / name, backend)
    assert sorted(os.listdir(tmp_path)) == [name]


@pytest.mark.parametrize("backend", ["pyfaidx", "pysam"])
def test_an_index_that_left_out_a_duplicate_record_is_refused(tmp_path, backend):
    import pysam

    fasta = tmp_path / "genome.fa"
    fasta.write_text(">chr1\nACGTACGT\n>chr2\nGGGG\n>chr1\nTTTT\n")
    pysam.faidx(str(fasta))  # samtools faidx keeps the first chr1 and says so only on stderr
    with pytest.raises(FastaError, match=r"genome.fa: record name 'chr1' appears more than once"):
        read_chrom_sizes(fasta, backend)


def test_regions_past_a_chromosome_end_are_refused_or_skipped(tmp_path, caplog):
    fasta = write(tmp_path / "g.fa", ">chr1\n" + "ACGT" * 25 + "\n>chr2\n" + "N" * 50 + "\n")
    regions = pd.DataFrame({"chrom": ["chr1", "chr1", "chr2"], "start": [10, 150, 0], "end": [30, 170, 20],
                            "name": ["a", "beyond", "gap"]})
    with pytest.raises(FastaError, match=r"regions: 1 regions, or their windows, start at or past the end of their "
                                         r"chromosome in .*g.fa \(first: beyond at chr1:150-170, chromosome length "
                                         r"100\)"):
        load_regions(fasta, regions, width=20, progress=False)
    # A region starting on the chromosome whose summit puts its window past the end is named with its window.
    summit = pd.DataFrame({"chrom": ["chr1"], "start": [60], "end": [200], "name": ["edge"], "summit": [130]})
    with pytest.raises(FastaError, match=r"\(first: edge at chr1:60-200, its 20 bp window chr1:180-200, chromosome "
                                         r"length 100\)"):
        load_regions(fasta, summit, width=20, progress=False)
    caplog.clear()
    with caplog.at_level(logging.WARNING):
        load_regions(fasta, summit.assign(summit=10), width=20, progress=False)
    assert ("regions: 1 regions end past the end of their chromosome in" in caplog.text
            and "(first: edge at chr1:60-200, chromosome length 100)" in caplog.text)
    with caplog.at_level(logging.WARNING):
        table, onehot = load_regions(fasta, regions, width=20, on_missing="skip", progress=False)
    assert table["name"].tolist() == ["a", "gap"]
    assert table.attrs["skipped"]["name"].tolist() == ["beyond"]
    assert "1 regions, or their windows, start at or past the end" in caplog.text and "skipping them" in caplog.text
    assert "1 windows hold no A, C, G or T (entirely N): gap" in caplog.text
    assert onehot[1].sum() == 0


def test_a_bed_joining_files_of_different_columns_is_read_and_stored(tmp_path):
    # cat of a BED6 and a BED4 (and a BED5): rows without score or strand get none.
    bed = write(tmp_path / "both.bed", "chr1\t100\t200\tr1\t5\t+\nchr1\t300\t400\tn1\nchr1\t500\t600\tn2\t7\n")
    frame = read_bed(bed)
    assert frame["strand"].tolist() == ["+", ".", "."]
    assert frame["score"].tolist()[0::2] == [5.0, 7.0] and np.isnan(frame["score"][1])
    write_store(tmp_path / "regions.h5", resize(frame, 50), {"onehot": np.zeros((3, 4, 50), np.float32)},
                kind="regions")
    assert read_regions(tmp_path / "regions.h5")["strand"].tolist() == ["+", ".", "."]


def test_one_hot_encode_takes_bytes_and_every_numeric_dtype():
    expected = one_hot_encode(["ACGTN", "acgta"])
    assert np.array_equal(one_hot_encode([b"ACGTN", "acgta"]), expected)
    assert np.array_equal(one_hot_encode(b"ACGTN"), expected[0])
    for dtype in (np.float16, np.float64, np.int8, np.uint8, bool):
        encoded = one_hot_encode(["ACGTN", "acgta"], dtype)
        assert encoded.dtype == dtype and np.array_equal(encoded.astype(np.float32), expected)
    with pytest.raises(SequenceError, match="dtype must be a float, integer or bool type"):
        one_hot_encode(["ACGT"], np.complex64)
