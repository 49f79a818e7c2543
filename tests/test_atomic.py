import errno
import io

import h5py
import numpy as np
import pandas as pd
import pytest
from faults import entries, mounted_tmpfs

from genomatt import atomic
from genomatt.atomic import (abandon_outputs, atomic_hdf5, atomic_path, command_outputs, make_output_folder,
                             remove_stale_temporaries, warn_of_earlier_files)
from genomatt.errors import OutputError, StoreError
from genomatt.store import read_array, write_store, writing_store


def regions(n):
    return pd.DataFrame({"chrom": "chr1", "start": np.arange(n) * 100, "end": np.arange(n) * 100 + 50,
                         "name": [f"r{i}" for i in range(n)]})


def test_stale_temporaries_of_a_killed_write_are_removed(tmp_path):
    stale = [tmp_path / ".x.h5.ab12cd34.tmp", tmp_path / ".x.h5.zz_99_aa.tmp"]
    for path in stale:
        path.write_bytes(b"partial")
    kept = [tmp_path / ".y.h5.ab12cd34.tmp", tmp_path / "x.h5.notes"]
    for path in kept:
        path.write_bytes(b"other")
    write_store(tmp_path / "x.h5", regions(3))
    assert not any(path.exists() for path in stale)
    assert all(path.exists() for path in kept)
    assert remove_stale_temporaries(tmp_path / "y.h5") == [kept[0]]


class _FailingFile(io.FileIO):
    """A file whose writes fail with EIO once ``budget`` bytes are written."""

    budget = 4096

    def write(self, data):
        if self.tell() + len(memoryview(data).cast("B")) > self.budget:
            raise OSError(errno.EIO, "Input/output error")
        return super().write(data)


def test_hdf5_write_error_is_one_output_error(tmp_path, monkeypatch):
    monkeypatch.setattr(atomic, "open", lambda path, mode, buffering: _FailingFile(path, "w+"), raising=False)
    with pytest.raises(OutputError, match=r"x.h5: cannot write \(Input/output error\); nothing was written"):
        write_store(tmp_path / "x.h5", regions(500), {"onehot": np.random.default_rng(0).random((500, 4, 50))})
    assert list(tmp_path.iterdir()) == []


def test_other_errors_in_an_hdf5_write_pass_through(tmp_path):
    with pytest.raises(KeyError), atomic_hdf5(tmp_path / "x.h5") as handle:
        handle["x"] = 1
        raise KeyError("x")
    assert list(tmp_path.iterdir()) == []


def test_failed_write_removes_the_folders_it_created_and_only_those(tmp_path):
    (tmp_path / "kept").mkdir()
    with pytest.raises(KeyboardInterrupt), atomic_path(tmp_path / "kept" / "new" / "deeper" / "x.tsv") as tmp:
        tmp.write_text("partial")
        raise KeyboardInterrupt
    assert [path.name for path in tmp_path.iterdir()] == ["kept"] and list((tmp_path / "kept").iterdir()) == []
    (tmp_path / "kept" / "new").mkdir()
    (tmp_path / "kept" / "new" / "other.tsv").write_text("someone else's")
    with pytest.raises(ValueError), atomic_path(tmp_path / "kept" / "new" / "deeper" / "x.tsv"):
        raise ValueError
    assert [path.name for path in (tmp_path / "kept" / "new").iterdir()] == ["other.tsv"]


def test_failed_command_removes_the_outputs_it_completed(tmp_path):
    with pytest.raises(StoreError), command_outputs() as completed:
        write_store(tmp_path / "first.h5", regions(3))
        with atomic_path(tmp_path / "second.tsv") as tmp:
            tmp.write_text("done")
        assert completed == [tmp_path / "first.h5", tmp_path / "second.tsv"]
        write_store(tmp_path / "third.h5", regions(3), {"bad": np.zeros(2)})
    assert list(tmp_path.iterdir()) == []
    with command_outputs():
        write_store(tmp_path / "first.h5", regions(3))
    assert [path.name for path in tmp_path.iterdir()] == ["first.h5"]


def test_a_failed_command_puts_back_the_earlier_files_it_replaced(tmp_path):
    # An earlier run's complete outputs in the folder: a failure after some were replaced leaves them all as
    # they were, and only the new file the failed command wrote is gone.
    (tmp_path / "hits.tsv").write_text("earlier hits")
    (tmp_path / "hits.bed").write_text("earlier bed")
    with pytest.raises(StoreError), command_outputs():
        for name in ("hits.tsv", "hits.tsv", "new.tsv"):  # one output written twice
            with atomic_path(tmp_path / name) as tmp:
                tmp.write_text("this run")
        assert (tmp_path / ".hits.tsv.previous").read_text() == "earlier hits"
        write_store(tmp_path / "hits.h5", regions(3), {"bad": np.zeros(2)})
    assert {path.name: path.read_text() for path in tmp_path.iterdir()} == {"hits.tsv": "earlier hits",
                                                                           "hits.bed": "earlier bed"}


def test_an_earlier_version_is_put_back_when_the_rename_onto_it_fails(tmp_path, monkeypatch):
    (tmp_path / "out.txt").write_text("earlier")
    real_replace = atomic.os.replace

    def failing_replace(source, target):
        if str(source).endswith(".tmp"):
            raise OSError(errno.EIO, "Input/output error")
        return real_replace(source, target)

    monkeypatch.setattr(atomic.os, "replace", failing_replace)
    with pytest.raises(OutputError), command_outputs():
        with atomic_path(tmp_path / "out.txt") as tmp:
            tmp.write_text("this run")
    assert {path.name: path.read_text() for path in tmp_path.iterdir()} == {"out.txt": "earlier"}


def test_a_failed_command_leaves_no_file_it_wrote_twice(tmp_path):
    with pytest.raises(StoreError), command_outputs():
        for text in ("first write", "second write"):
            with atomic_path(tmp_path / "out.txt") as tmp:
                tmp.write_text(text)
        write_store(tmp_path / "bad.h5", regions(3), {"bad": np.zeros(2)})
    assert list(tmp_path.iterdir()) == []


def test_a_command_that_completes_keeps_no_earlier_version(tmp_path):
    (tmp_path / "hits.tsv").write_text("earlier hits")
    (tmp_path / ".hits.tsv.previous").write_text("kept by a command killed with SIGKILL")
    with command_outputs():
        with atomic_path(tmp_path / "hits.tsv") as tmp:
            tmp.write_text("this run")
    assert {path.name: path.read_text() for path in tmp_path.iterdir()} == {"hits.tsv": "this run"}
    with atomic_path(tmp_path / "hits.tsv") as tmp:  # outside a command: nothing kept
        tmp.write_text("again")
    assert [path.name for path in tmp_path.iterdir()] == ["hits.tsv"]


@pytest.mark.parametrize("free", [0, 8192, 65536])
def test_full_disk_is_one_output_error(tmp_path, free):
    data = np.random.default_rng(0).random((2000, 4, 100)).astype(np.float32)
    with mounted_tmpfs(tmp_path / "disk", free=free) as disk:
        with pytest.raises(OutputError, match=r"x.h5: cannot write \(No space left on device\)"):
            write_store(disk / "x.h5", regions(2000), {"onehot": data})
        assert entries(disk) == []
        with pytest.raises(OutputError, match=r"y.txt: cannot write \(No space left on device\)"):
            with atomic_path(disk / "y.txt") as tmp:
                tmp.write_bytes(b"x" * (free + 65536))
        assert entries(disk) == []


def test_a_streamed_write_stops_at_the_first_block_that_does_not_fit(tmp_path):
    """A full disk is an error at the block that did not fit, not after the rest is held in memory."""
    block = np.random.default_rng(0).random((250, 4, 1000)).astype(np.float32)  # 4 MB, incompressible
    with mounted_tmpfs(tmp_path / "disk", size="8m", free=6 << 20) as disk:
        written = []
        with pytest.raises(OutputError, match=r"x.h5: cannot write \(No space left on device\)"):
            with writing_store(disk / "x.h5", regions(2500), {"onehot": ((4, 1000), np.float32)}) as writer:
                for start in range(0, 2500, 250):
                    writer.write({"onehot": block})
                    written.append(start)
        assert len(written) < 2 and entries(disk) == []


def test_read_only_folder_is_one_output_error(tmp_path):
    with mounted_tmpfs(tmp_path / "disk", read_only=True) as disk:
        with pytest.raises(OutputError, match=r"x.h5: cannot write \(Read-only file system\)"):
            write_store(disk / "x.h5", regions(3))
        with pytest.raises(OutputError, match=r"x.h5: cannot write"):
            write_store(disk / "sub" / "x.h5", regions(3))


def test_a_file_where_a_folder_is_needed_is_named(tmp_path):
    # It was "cannot write (File exists)" or "(Not a directory)".
    (tmp_path / "afile").write_text("x")
    for folder in (tmp_path / "afile", tmp_path / "afile" / "deeper"):
        with pytest.raises(OutputError,
                           match=rf"cannot write: {tmp_path / 'afile'} is a file, where a folder is needed"):
            make_output_folder(folder)
    with pytest.raises(OutputError, match=rf"{tmp_path / 'afile'} is a file, where a folder is needed"):
        write_store(tmp_path / "afile" / "x.h5", regions(3))
    assert (tmp_path / "afile").read_text() == "x"


def test_a_written_file_reads_back_after_a_full_disk(tmp_path):
    data = np.random.default_rng(0).random((50, 4, 10)).astype(np.float32)
    with mounted_tmpfs(tmp_path / "disk", free=1 << 20, size="2m") as disk:
        path = write_store(disk / "x.h5", regions(50), {"onehot": data})
        np.testing.assert_array_equal(read_array(path, "onehot"), data)
        with h5py.File(path) as handle:
            assert handle["onehot"].fletcher32


def test_full_disk_while_saving_a_model_is_one_output_error(tmp_path):
    from genomatt.models import build_model, save_model

    model = build_model({"architecture": "bpnet", "n_tasks": 2, "input_length": 200, "filters": 64, "n_layers": 4})
    with mounted_tmpfs(tmp_path / "disk", free=16 * 1024) as disk:
        with pytest.raises(OutputError, match=r"model.pt: cannot write \(No space left on device\)"):
            save_model(model, disk / "model.pt", ["a", "b"])
        assert entries(disk) == []


def test_full_disk_while_simulating_leaves_nothing(tmp_path):
    from genomatt.cli.main import main

    with mounted_tmpfs(tmp_path / "disk", free=64 * 1024) as disk:
        assert main(["simulate", "--out-dir", str(disk / "sim"), "--n-chromosomes", "2",
                     "--chromosome-length", "50000", "--n-positives", "10", "--n-negatives", "4"]) == 2
        assert entries(disk) == []


def test_abandon_outputs_removes_the_files_being_written_and_the_completed_outputs(tmp_path):
    # What a SIGTERM handler does before ending the process; here the process goes on, so the interrupted
    # write then fails to rename what is no longer there.
    with pytest.raises(OutputError), command_outputs():
        with atomic_path(tmp_path / "done.txt") as tmp:
            tmp.write_text("complete")
        with atomic_path(tmp_path / "half.txt") as tmp:
            tmp.write_text("partial")
            names = sorted(path.name for path in tmp_path.iterdir())
            assert names[0].startswith(".half.txt.") and names[1] == "done.txt"
            abandon_outputs()
            assert list(tmp_path.iterdir()) == []


def test_abandon_outputs_puts_back_the_earlier_files(tmp_path):
    (tmp_path / "done.txt").write_text("earlier")
    with pytest.raises(OutputError), command_outputs():
        with atomic_path(tmp_path / "done.txt") as tmp:
            tmp.write_text("complete")
        with atomic_path(tmp_path / "half.txt") as tmp:
            tmp.write_text("partial")
            abandon_outputs()
            assert {path.name: path.read_text() for path in tmp_path.iterdir()} == {"done.txt": "earlier"}


def test_a_failed_command_removes_the_output_folders_it_made_while_empty(tmp_path):
    kept = tmp_path / "kept"
    kept.mkdir()
    (kept / "user.txt").write_text("not ours")
    with pytest.raises(RuntimeError):
        with command_outputs():
            make_output_folder(tmp_path / "logos" / "deep")
            with atomic_path(tmp_path / "modisco" / "a.h5") as tmp:
                tmp.write_text("x")
            with atomic_path(kept / "b.txt") as tmp:
                tmp.write_text("y")
            raise RuntimeError("later step failed")
    assert sorted(path.name for path in tmp_path.iterdir()) == ["kept"]
    assert [path.name for path in kept.iterdir()] == ["user.txt"]


def test_files_of_an_earlier_run_in_an_output_folder_are_named_and_kept(tmp_path, caplog):
    for name in ("GATA1.h5", "TAL1.h5", "old_task.h5", "notes.txt"):
        (tmp_path / name).write_text("")
    with caplog.at_level("WARNING", logger="genomatt.atomic"):
        earlier = warn_of_earlier_files(tmp_path, "*.h5", [tmp_path / "GATA1.h5", tmp_path / "TAL1.h5"])
    assert earlier == [tmp_path / "old_task.h5"] and (tmp_path / "old_task.h5").exists()
    assert "holds 1 files of this kind that this run did not write (old_task.h5)" in caplog.text
