"""Charts drawn in worker processes, so a tick with many charts uses every core.

A chart takes about half a second of matplotlib, and matplotlib's caches are not shared between
threads safely (digests.chart draws one at a time per process). A pool of processes draws
several at once. Workers start from a fork server that has imported matplotlib already (a
clean process, not a fork of the threaded bot), once per pool; they are reused by every tick.
With `workers=0`, or a single chart, charts are drawn in the calling thread.
"""

from __future__ import annotations

import atexit
import logging
import multiprocessing
import threading
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool

from digests.chart import ChartData, draw_job

log = logging.getLogger(__name__)

ChartJob = tuple[ChartData, str]


class ChartPool:
    """Draws chart jobs (digests.chart.chart_job) in up to `workers` processes."""

    def __init__(self, workers: int) -> None:
        self.workers = max(0, workers)
        self._executor: ProcessPoolExecutor | None = None
        self._lock = threading.Lock()

    def _pool(self) -> ProcessPoolExecutor:
        with self._lock:
            if self._executor is None:
                context = multiprocessing.get_context("forkserver")
                context.set_forkserver_preload(["digests.chart"])
                self._executor = ProcessPoolExecutor(self.workers, mp_context=context)
            return self._executor

    def draw(self, jobs: Sequence[ChartJob]) -> list[bytes]:
        """The PNGs of `jobs`, in order."""
        if self.workers == 0 or len(jobs) <= 1:
            return [draw_job(job) for job in jobs]
        try:
            return list(self._pool().map(draw_job, jobs))
        except BrokenProcessPool:
            # A worker died (killed, out of memory): start afresh next time, draw these here.
            log.exception(
                "the chart workers stopped; drawing %d chart(s) in this process", len(jobs)
            )
            self.close()
            return [draw_job(job) for job in jobs]

    def close(self) -> None:
        """Stop the workers (a new pool starts when charts are drawn again)."""
        with self._lock:
            executor, self._executor = self._executor, None
        if executor is not None:
            executor.shutdown(wait=True, cancel_futures=True)


_POOLS: dict[int, ChartPool] = {}
_POOLS_LOCK = threading.Lock()


def chart_pool(workers: int) -> ChartPool:
    """The process's pool of `workers` chart workers (one per size, closed at exit)."""
    with _POOLS_LOCK:
        pool = _POOLS.get(workers)
        if pool is None:
            pool = _POOLS[workers] = ChartPool(workers)
        return pool


@atexit.register
def _close_all() -> None:
    for pool in list(_POOLS.values()):
        pool.close()
