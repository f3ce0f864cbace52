"""Blocks of queries on several CPU threads, results in block order.

NumPy's sorts, element-wise passes and gathers, and BLAS, release the GIL, so
``threads`` blocks run at once on as many cores.  BLAS is limited to one
thread meanwhile (``threadpoolctl``, a scikit-learn dependency), also when
``threads`` is 1: the cores are not oversubscribed, and every block's matrix
product is computed the same way whatever the number of threads or cores
(a float32 product's rounding depends on how BLAS splits it between threads).
Results come back in block order, so sums over blocks do not depend on the
number of threads either.
"""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from contextlib import nullcontext
from typing import Any, Callable, Iterator, Sequence, TypeVar

T = TypeVar("T")


def default_threads() -> int:
    """The CPU cores this process may use (``os.sched_getaffinity``, else ``os.cpu_count()``)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not on Linux
        return max(1, os.cpu_count() or 1)


def map_blocks(fn: Callable[[int, int], T], n: int, block: int, threads: int | None = None,
               progress: bool = False) -> Iterator[T]:
    """``fn(s0, s1)`` for the blocks ``[0, block), [block, 2·block), ... [., n)``, yielded in order.

    Args:
        fn: the work of one block (it must not modify shared arrays).
        n: number of rows; block: rows per block (at least 1).
        threads: blocks run at once (default: :func:`default_threads`; 1: in this thread),
            each with one BLAS thread.
        progress: a tqdm progress bar on stderr, one step per block.
    """
    block = max(1, int(block))
    spans = [(s0, min(n, s0 + block)) for s0 in range(0, n, block)]
    return map_ordered(lambda span: fn(*span), spans, threads, progress)


def map_ordered(fn: Callable[[Any], T], items: Sequence, threads: int | None = None,
                progress: bool = False) -> Iterator[T]:
    """``fn(item)`` for every item, on ``threads`` threads (one BLAS thread each), yielded in order."""
    threads = default_threads() if threads is None else max(1, int(threads))
    threads = min(threads, max(1, len(items)))
    bar = None
    if progress:
        import sys

        from tqdm import tqdm

        bar = tqdm(total=len(items), file=sys.stderr, unit="block")
    try:
        if threads <= 1:
            with _blas_limit(1):
                for item in items:
                    yield fn(item)
                    if bar is not None:
                        bar.update()
            return
        with _blas_limit(1), ThreadPoolExecutor(threads) as pool:
            pending = []
            for item in items:  # at most 2·threads items submitted ahead (bounded memory)
                pending.append(pool.submit(fn, item))
                if len(pending) >= 2 * threads:
                    yield pending.pop(0).result()
                    if bar is not None:
                        bar.update()
            for fut in pending:
                yield fut.result()
                if bar is not None:
                    bar.update()
    finally:
        if bar is not None:
            bar.close()


def _blas_limit(n_threads: int):
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:  # pragma: no cover - scikit-learn depends on it
        return nullcontext()
    return threadpool_limits(n_threads, user_api="blas")
