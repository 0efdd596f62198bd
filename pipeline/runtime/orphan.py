"""A worker started by a harness (``sep up``, a benchmark, a test) stops when that harness is
gone.

Workers run in sessions of their own (``start_new_session``: a terminal's Ctrl-C reaches the
harness, which stops them in order), so a harness killed outright left them running, retrying
a broker that no longer exists.  When a later broker took the same port, such an orphan asked
it for its topics and the broker auto-created them with its default partition count: a test
then failed with ``TopicMismatch`` for a topic it had not created yet.  The harness names
itself in ``SEP_PARENT_PID``; a worker given one checks every second that it is still its
parent and, once it is not, stops itself the graceful way (SIGTERM), then for good
(SIGKILL) if that has not ended it within ``FORCE_AFTER_S``.  A worker started by hand
has no such variable and is never stopped by this.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import threading
from collections.abc import Callable

log = logging.getLogger(__name__)

PARENT_ENV = "SEP_PARENT_PID"


def expected_parent(environ: dict[str, str] | os._Environ[str] = os.environ) -> int | None:
    """The harness' pid, when this process was started by one."""
    value = environ.get(PARENT_ENV, "")
    return int(value) if value.isdigit() else None


FORCE_AFTER_S = 30.0
"""How long the graceful stop may take before the orphan kills itself: a worker whose broker
went with its harness was seen ignoring SIGTERM for minutes (its clients' stop retried)."""


def _terminate_self() -> None:
    os.kill(os.getpid(), signal.SIGTERM)
    # A thread, not the loop: the loop may be what does not finish.
    timer = threading.Timer(FORCE_AFTER_S, os.kill, (os.getpid(), signal.SIGKILL))
    timer.daemon = True
    timer.start()


async def watch_parent(
    expected: int,
    every_s: float = 1.0,
    *,
    getppid: Callable[[], int] = os.getppid,
    stop: Callable[[], None] = _terminate_self,
) -> None:
    """Return after calling ``stop`` once the parent is no longer ``expected``."""
    while True:
        await asyncio.sleep(every_s)
        parent = getppid()
        if parent != expected:
            log.warning(
                "the process that started this worker is gone; stopping",
                extra={"expected_parent": expected, "parent": parent},
            )
            stop()
            return
