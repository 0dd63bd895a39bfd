"""Sweep workers die with their driver, however the driver dies (Ctrl-C, SIGTERM or kill -9).

A process-pool worker blocked on its task queue does not notice that the driver is gone, so
after `kill -9` it would live on, holding memory (and the output folder's lock). Two guards,
installed by the pool initializer in each worker:

- Linux: `prctl(PR_SET_PDEATHSIG, SIGKILL)` asks the kernel to kill the worker the moment
  its parent exits (prctl(2); called through ctypes, no extra dependency);
- everywhere: a daemon thread that checks every `POLL_S` seconds whether the parent process
  is still the one that started the worker, and exits the worker when it is not (a
  re-parented orphan has a different parent pid).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import signal
import sys
import threading
import time

PR_SET_PDEATHSIG = 1  # <linux/prctl.h>
POLL_S = 0.5


def _set_parent_death_signal() -> bool:
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
        return libc.prctl(PR_SET_PDEATHSIG, int(signal.SIGKILL), 0, 0, 0) == 0
    except (OSError, AttributeError):
        return False


def _watch(parent: int) -> None:
    while True:
        time.sleep(POLL_S)
        if os.getppid() != parent:
            os._exit(1)  # the driver is gone: nobody will read this worker's results


def die_with_parent(parent: int | None = None) -> None:
    """Make this (worker) process exit when its parent `parent` (default: the current parent) dies."""
    parent = os.getppid() if parent is None else parent
    _set_parent_death_signal()
    if os.getppid() != parent:  # the parent died before the guard was in place
        os._exit(1)
    threading.Thread(target=_watch, args=(parent,), name="sparsim-parent-watch", daemon=True).start()
