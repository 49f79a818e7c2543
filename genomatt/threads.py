"""Thread limits of the CPU kernels (numba, BLAS and OpenMP) that motif discovery and matching run."""

from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import Iterator

import numba

from genomatt.errors import ConfigError

log = logging.getLogger(__name__)


@contextlib.contextmanager
def bounded_threads(threads: int) -> Iterator[None]:
    """Run the block with numba and the BLAS/OpenMP libraries limited to ``threads`` threads.

    tfmodisco-lite compiles its kernels in forked children (which also fills numba's on-disk cache) and
    builds patterns in forked workers only under a fork-safe threading layer, which GNU OpenMP is not; so
    when no numba threading layer has started yet and ``NUMBA_THREADING_LAYER`` is not set, the workqueue
    layer is chosen.
    """
    from threadpoolctl import threadpool_limits

    if threads < 1:
        raise ConfigError(f"threads must be at least 1, got {threads}")
    try:
        numba.threading_layer()
    except ValueError:
        if "NUMBA_THREADING_LAYER" not in os.environ:
            numba.config.THREADING_LAYER = "workqueue"
    available = numba.config.NUMBA_NUM_THREADS
    if threads > available:
        log.info("using %d threads, the most numba allows here (asked for %d)", available, threads)
    saved = numba.get_num_threads()
    numba.set_num_threads(min(threads, available))
    try:
        with threadpool_limits(limits=threads):
            yield
    finally:
        numba.set_num_threads(saved)
