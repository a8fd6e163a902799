"""Server workers end with their master: none is left serving after a ``kill -9``.

With ``serve --workers N`` the master process only supervises; the workers hold
the listening socket. If the master is killed outright it cannot stop them, and
orphans would keep answering with no supervisor and block a restart on the
port. Each worker therefore asks the kernel for SIGTERM (its graceful stop)
when its parent dies; where that is not available, a thread watches instead.
"""

from __future__ import annotations

import ctypes
import os
import signal
import sys
import threading
import time

__all__ = ["MASTER_PID_VARIABLE", "exit_with_master"]

# Set by ``serve`` for its workers: the pid of the process that supervises them.
MASTER_PID_VARIABLE = "AGENTMARK_SERVE_MASTER_PID"
PR_SET_PDEATHSIG = 1
POLL_SECONDS = 1.0


def exit_with_master() -> None:
    """In a worker of ``serve --workers N``: stop when the master dies. Else nothing."""
    master = os.environ.get(MASTER_PID_VARIABLE)
    if not master or int(master) == os.getpid():
        return  # not a worker: a single-process server is the master itself
    if not _ask_kernel():
        threading.Thread(target=_watch, args=(int(master),), daemon=True).start()
    # The master may have died before the request above took effect.
    if os.getppid() != int(master):
        os.kill(os.getpid(), signal.SIGTERM)


def _ask_kernel() -> bool:
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        return bool(libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0) == 0)
    except (OSError, AttributeError):
        return False


def _watch(master: int) -> None:
    while os.getppid() == master:
        time.sleep(POLL_SECONDS)
    os.kill(os.getpid(), signal.SIGTERM)
