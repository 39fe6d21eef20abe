"""The lifecycle of the blend worker processes: they end with their parent, ignore
Ctrl-C (the parent stops them), and a pool that cannot start workers is told apart
from a blend that kills its worker.

- `worker_lifeline` (called in each worker's initializer): on Linux the kernel
  sends SIGKILL to the worker when the parent dies (``prctl(PR_SET_PDEATHSIG)``
  through ctypes); everywhere a daemon thread also watches the parent's pid and
  exits the worker when it changes (the parent was killed, the worker adopted).
  SIGINT is ignored: Ctrl-C to the process group reaches the parent, which shuts
  the pool down, and the workers print nothing.
- `sigint_ignored`: the same for processes started by others (Dask's local cluster).
- `pool_starts`: whether a fresh pool can run a no-op at all; used after a worker
  death to decide between "this blend kills its worker" and "the pool is broken".
"""

from __future__ import annotations

import os
import signal
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

__all__ = [
    "PoolError",
    "check_pool_runs",
    "pool_starts",
    "progress_bar",
    "sigint_ignored",
    "worker_lifeline",
]

_PR_SET_PDEATHSIG = 1
#: Seconds between two looks of the watchdog thread at the parent's pid.
WATCH_INTERVAL = 0.5


class PoolError(RuntimeError):
    """The worker processes of the blend pool cannot run (not a blend's fault)."""


def _set_parent_death_signal() -> bool:
    if not sys.platform.startswith("linux"):
        return False
    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        return libc.prctl(_PR_SET_PDEATHSIG, int(signal.SIGKILL), 0, 0, 0) == 0
    except (OSError, AttributeError):
        return False


def _watch_parent(parent: int) -> None:
    while True:
        if os.getppid() != parent:
            os._exit(1)
        time.sleep(WATCH_INTERVAL)


def worker_lifeline(parent: int) -> None:
    """Make this worker process end when ``parent`` dies, and ignore SIGINT.

    Parameters
    ----------
    parent
        The pid of the process that started the pool.
    """
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    _set_parent_death_signal()
    if os.getppid() != parent:  # the parent died before the signal was armed
        os._exit(1)
    threading.Thread(target=_watch_parent, args=(parent,), daemon=True).start()


def _noop() -> int:
    return os.getpid()


def pool_starts(new_pool: Any, timeout: float = 60.0) -> bool:
    """Whether a fresh pool from ``new_pool()`` runs a no-op (shut down afterwards)."""
    pool = new_pool()
    try:
        pool.submit(_noop).result(timeout=timeout)
        return True
    except Exception:
        return False
    finally:
        pool.shutdown(wait=False, cancel_futures=True)


def check_pool_runs(new_pool: Any, row: int) -> None:
    """After a worker died deblending the blend of ``row`` alone: raise `PoolError`
    if a fresh pool cannot even run a no-op (then no blend is at fault)."""
    if not pool_starts(new_pool):
        raise PoolError(
            "the blend worker processes cannot run (a worker died on a blend run alone, "
            "and a fresh pool cannot run an empty task); the patch is not marked done"
        )


@contextmanager
def sigint_ignored() -> Iterator[None]:
    """Ignore SIGINT while processes are started in the block (main thread only).

    A process started meanwhile inherits the ignored signal (through ``exec``
    too), and Python does not install its KeyboardInterrupt handler in it: Ctrl-C
    to the process group then reaches only this process, which stops the others
    (one message, no tracebacks). A Ctrl-C inside the block itself is lost (the
    start of a local Dask cluster: a second or two).
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


def progress_bar(total: int, enabled: bool):
    """A tqdm bar over ``total`` blends, or an object with the same ``update``/``close``.

    Parameters
    ----------
    total
        Number of blends.
    enabled
        False (or tqdm missing): a bar that draws nothing.
    """
    if enabled:
        try:
            from tqdm.auto import tqdm

            return tqdm(total=total, unit="blend", desc="deblend", leave=False)
        except ImportError:  # pragma: no cover
            pass
    return _NoBar()


class _NoBar:
    def update(self, n: int = 1) -> None:
        pass

    def close(self) -> None:
        pass
