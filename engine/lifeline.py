"""Pool workers that die with the process that started them, whatever ends it (``kill -9`` too).

Why this is needed: on Linux the image loader's workers are forked by multiprocessing's
fork server, so their parent is the fork server, not RegLab. Each worker also holds the
write end of the fork server's "alive" pipe and of the resource tracker's pipe, and the
read *and* write ends of its own task queue. When RegLab is killed nothing reaches EOF:
the workers wait for tasks forever, the fork server waits for its alive pipe to close, the
resource tracker for its pipe, and all of them keep RegLab's stdout and stderr open, so
``python main.py data … | cat`` hangs. A parent-death signal (``PR_SET_PDEATHSIG``) does
not help: it fires when the *parent* (the fork server) dies, which it never does here.

:func:`watch_parent` is the pool's initializer: a daemon thread in each worker waits for
the main process to exit — on a pidfd (Linux ≥ 5.3: woken the moment it exits, no
polling) or else by polling every :data:`POLL_SECONDS` — and then ends the worker with
``os._exit``. Once the workers are gone the fork server's alive pipe and the resource
tracker's pipe reach EOF and both exit by themselves, releasing stdout and stderr.

Workers also ignore SIGINT and SIGHUP: Ctrl-C in a terminal (or the terminal closing)
signals the whole process group, and the main process already handles those by
cancelling the job and shutting the pool down; a worker dying of them would only print
a traceback and break the pool.

This module imports only the standard library, so the fork server can preload it.
"""

from __future__ import annotations

import os
import select
import signal
import threading
import time

POLL_SECONDS = 0.25  # without pidfd: how often a worker checks that the main process still exists


def watch_parent(main_pid: int) -> None:
    """ProcessPoolExecutor initializer: exit this worker as soon as process main_pid has exited."""
    for name in ("SIGINT", "SIGHUP"):
        if hasattr(signal, name):
            signal.signal(getattr(signal, name), signal.SIG_IGN)
    if os.name != "posix":
        return  # spawn on Windows: workers already end when their pipes to the parent break
    pidfd = None
    if hasattr(os, "pidfd_open"):
        try:
            pidfd = os.pidfd_open(main_pid)
        except ProcessLookupError:
            os._exit(1)  # the main process died before this worker started
        except OSError:
            pidfd = None  # a kernel without pidfd_open: poll instead
    elif not _exists(main_pid):
        os._exit(1)
    threading.Thread(
        target=_wait_and_exit, args=(main_pid, pidfd), name="reglab-lifeline", daemon=True
    ).start()


def _exists(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:
        return True  # EPERM: it exists
    return True


def _wait_and_exit(main_pid: int, pidfd: int | None) -> None:
    if pidfd is not None:
        while True:
            try:
                if select.select([pidfd], [], [])[0]:
                    break  # a pidfd becomes readable when its process exits
            except InterruptedError:
                continue
    else:
        while _exists(main_pid):
            time.sleep(POLL_SECONDS)
    os._exit(1)
