import numba
import pytest

from genomatt.errors import ConfigError
from genomatt.threads import bounded_threads


def test_bounded_threads_sets_and_restores_numba_threads():
    before = numba.get_num_threads()
    with bounded_threads(1):
        assert numba.get_num_threads() == 1
    assert numba.get_num_threads() == before
    with bounded_threads(10_000):
        assert numba.get_num_threads() == numba.config.NUMBA_NUM_THREADS
    with pytest.raises(ConfigError, match="at least 1"):
        with bounded_threads(0):
            pass
