"""Single-threaded BLAS while fitting.

The fits call LAPACK/BLAS on tiny matrices thousands of times (L-BFGS-B's `setulb`, lstsq);
a multi-threaded OpenBLAS spends far more time waking its threads than computing on a shared
machine (measured: 10 ms vs 0.1 ms per L-BFGS-B step). Limiting BLAS to one thread inside
the fitters makes them about 100 times faster there and changes no result.
"""

from __future__ import annotations

import functools
from contextlib import contextmanager

try:
    from threadpoolctl import threadpool_limits
except ImportError:  # threadpoolctl ships with scikit-learn; without it, run as is
    threadpool_limits = None


@contextmanager
def single_thread_blas():
    if threadpool_limits is None:
        yield
        return
    with threadpool_limits(limits=1, user_api="blas"):
        yield


def blas_single(fn):
    """Decorator form of `single_thread_blas`."""
    @functools.wraps(fn)
    def wrapped(*args, **kwargs):
        with single_thread_blas():
            return fn(*args, **kwargs)
    return wrapped
