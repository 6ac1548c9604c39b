"""``python -m tests.reliability.load_boost CMD [ARG...]``: run CMD ahead of the machine's other work.

The load tests measure latency on a 2-core machine that other jobs share. Pinning (``taskset``) keeps the
server and the load generators off each other's core, but not off other jobs': with the kernel's
autogroup scheduling (on by default on desktop and many server kernels) every session gets an equal share
of a core whatever its processes' nice values, so a neighbour's busy loop takes half the server's core in
the middle of a measurement. This wrapper starts a new session (a new autogroup), lowers that autogroup's
nice value and the process's own, then ``exec``s CMD (same pid). Each step is best effort: without the
privilege (CAP_SYS_NICE) or without autogroups, CMD simply runs at normal priority.
"""

from __future__ import annotations

import contextlib
import os
import sys

NICE = -15


def boost() -> bool:
    """Raise this process's scheduling priority as far as allowed; True when anything was raised."""
    raised = False
    with contextlib.suppress(OSError):
        os.setsid()  # a new session is a new autogroup
    with contextlib.suppress(OSError):
        with open("/proc/self/autogroup", "w") as f:  # noqa: PTH123
            f.write(str(NICE))
        raised = True
    with contextlib.suppress(OSError):
        os.setpriority(os.PRIO_PROCESS, 0, NICE)
        raised = True
    return raised


def main(argv: list[str]) -> None:
    if not argv:
        raise SystemExit("usage: python -m tests.reliability.load_boost CMD [ARG...]")
    boost()
    os.execvp(argv[0], argv)


if __name__ == "__main__":
    main(sys.argv[1:])
