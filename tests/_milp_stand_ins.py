"""Stand-ins for the HiGHS runner of fairflip's worker process (see fairflip._highs_worker), used by
test_milp_deadline.py: solvers that ignore their time limit, or die. They run in the worker, which imports this
module by name from the test process's sys.path."""

from __future__ import annotations

import os
import time


def stall(request, emit):
    """Never answers (a solver stuck where it does not check its clock), and reports no incumbent."""
    time.sleep(600)


def stall_after_incumbent(request, emit):
    """Solves with HiGHS (which emits its improving solutions as incumbents), then stalls instead of answering."""
    from fairflip._highs_worker import run_highs

    run_highs(request, emit)
    time.sleep(600)


def die(request, emit):
    """The worker process dies mid-solve (as on a crash or an out-of-memory kill)."""
    os._exit(3)


def record_bounds(request, emit):
    """Solves with HiGHS and returns, besides its result, every dual bound it emitted on the way."""
    from fairflip._highs_worker import run_highs

    seen = []

    def tee(kind, payload):
        if kind == "bound":
            seen.append(payload)
        emit(kind, payload)

    result = run_highs(request, tee)
    result["bounds_seen"] = seen
    return result
