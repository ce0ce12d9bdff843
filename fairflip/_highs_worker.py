"""A HiGHS solve in a separate process, so that its wall-clock limit can be enforced by stopping the process.

HiGHS checks its ``time_limit`` only between its own steps; in presolve of a large dense MILP (the exact MILP on
full COMPAS at M = 25: 843 rows, 306,237 non-zeros) it was seen to run more than 7 minutes past a 30 s limit, and
no interrupt callback fires there either. :func:`fairflip.solvers.milp.solve` therefore runs HiGHS in a worker
process started from this module and kills it when the deadline passes.

This module is imported by the worker, so it stays light: numpy and highspy only (no cvxpy, no torch, nothing
from fairflip's other modules). The worker is started as ``python -c`` with the parent's ``sys.path``; it never
imports the parent's ``__main__`` (a user script without an ``if __name__ == "__main__"`` guard is safe, unlike
``multiprocessing``'s spawn).

Protocol (over the worker's stdin and its original stdout; HiGHS's own stdout goes to the null device): each
message is an 8-byte little-endian length followed by a pickle. The parent sends ``(runner, request)``, where
``runner`` is ``"module:function"`` (normally :func:`run_highs`); the runner may call ``emit(kind, payload)``
any number of times (``("incumbent", {"objective": float, "x": array})`` for improving MIP solutions,
``("bound", float)`` each time HiGHS's MIP dual bound rises) and its return value is sent as ``("done",
result)``; an exception is sent as ``("error", message)`` and the worker keeps serving. The worker exits when its
stdin closes.
"""

from __future__ import annotations

import importlib
import os
import pickle
import struct
import sys
import traceback
from typing import Any, BinaryIO, Callable

_HEADER = struct.Struct("<Q")

# The HiGHS info fields the parent reads (CVXPY's ``invert`` and the MIP statistics).
INFO_FIELDS = ("objective_function_value", "mip_dual_bound", "mip_gap", "mip_node_count",
               "simplex_iteration_count", "ipm_iteration_count", "crossover_iteration_count",
               "pdlp_iteration_count", "qp_iteration_count", "primal_solution_status", "dual_solution_status")


def write_message(stream: BinaryIO, message: Any) -> None:
    """Send one pickled message (length-prefixed) and flush."""
    data = pickle.dumps(message, protocol=pickle.HIGHEST_PROTOCOL)
    stream.write(_HEADER.pack(len(data)) + data)
    stream.flush()


def read_message(stream: BinaryIO) -> Any:
    """Read one message; raises EOFError when the stream closed (between or inside a message)."""
    header = _read_exactly(stream, _HEADER.size)
    return pickle.loads(_read_exactly(stream, _HEADER.unpack(header)[0]))


def _read_exactly(stream: BinaryIO, n: int) -> bytes:
    chunks, left = [], n
    while left:
        chunk = stream.read(left)
        if not chunk:
            raise EOFError("stream closed")
        chunks.append(chunk)
        left -= len(chunk)
    return b"".join(chunks)


def run_highs(request: dict[str, Any], emit: Callable[[str, Any], None]) -> dict[str, Any]:
    """Build the HiGHS model of ``request`` and run it, as CVXPY's HiGHS interface does.

    Args:
        request: ``col_cost`` (n,), ``col_lower`` (n,), ``col_upper`` (n,), ``row_lower`` (r,), ``row_upper``
            (r,), the column-wise constraint matrix as ``a_start`` (n + 1,), ``a_index`` (nnz,), ``a_value``
            (nnz,), ``integer`` (indices of the integer columns, possibly empty) and ``options`` (HiGHS option
            name -> value, set in order after ``log_to_console=False``).
        emit: called as ``emit("incumbent", {"objective": float, "x": array (n,)})`` on every improving MIP
            solution, and as ``emit("bound", float)`` whenever HiGHS's MIP dual bound (read at its interrupt
            callbacks) rises, so that the parent keeps the incumbent and the last bound if it has to stop the
            worker. HiGHS's dual bound only ever rises and is valid whenever it is read; the interrupt callback
            fires from the main search only, never from the sub-MIPs of its heuristics (whose bounds would be
            those of a restricted problem), so the value is the whole problem's bound.

    Returns:
        plain values: ``model_status`` (the HiGHS status name, e.g. ``kOptimal``), ``run_time`` (s),
        ``col_value`` (n,), ``row_dual`` (r,), ``info`` (dict of :data:`INFO_FIELDS`) and ``dual_ray`` (the
        ray as an array, only when the model is infeasible).
    """
    import highspy as hp
    import numpy as np

    model = hp.HighsModel()
    lp = model.lp_
    n = len(request["col_cost"])
    lp.num_col_ = n
    lp.num_row_ = len(request["row_upper"])
    lp.offset_ = 0
    lp.col_cost_ = request["col_cost"]
    lp.row_lower_ = request["row_lower"]
    lp.row_upper_ = request["row_upper"]
    lp.a_matrix_.format_ = hp.MatrixFormat.kColwise
    lp.a_matrix_.start_ = request["a_start"]
    lp.a_matrix_.index_ = request["a_index"]
    lp.a_matrix_.value_ = request["a_value"]
    integer = [int(i) for i in request["integer"]]
    if integer:
        integrality = [hp.HighsVarType.kContinuous] * n
        for i in integer:
            integrality[i] = hp.HighsVarType.kInteger
        lp.integrality_ = integrality
    lp.col_lower_ = request["col_lower"]
    lp.col_upper_ = request["col_upper"]

    def attempt() -> "hp.Highs":
        solver = hp.Highs()
        solver.setOptionValue("log_to_console", False)
        for name, value in request["options"].items():
            if solver.setOptionValue(name, value) == hp.HighsStatus.kError:
                raise ValueError(f"HiGHS refused the option {name}={value!r}")
        solver.passModel(model)
        if integer:
            def improving(event) -> None:
                out = event.data_out
                emit("incumbent", {"objective": float(out.objective_function_value),
                                   "x": np.array(out.mip_solution, dtype=np.float64)})

            solver.cbMipImprovingSolution.subscribe(improving)
            best = [-np.inf]

            def progress(event) -> None:
                bound = float(event.data_out.mip_dual_bound)
                if np.isfinite(bound) and bound > best[0]:
                    best[0] = bound
                    emit("bound", bound)

            solver.cbMipInterrupt.subscribe(progress)
        solver.run()
        return solver

    solver = attempt()
    status = solver.getModelStatus()
    if status == hp.HighsModelStatus.kNotset and "threads" in request["options"]:
        # HiGHS refuses a thread count other than the one its process-wide scheduler started with (an earlier
        # request with another count): restart the scheduler and run again, as the in-process path does.
        hp.Highs.resetGlobalScheduler(True)
        solver = attempt()
        status = solver.getModelStatus()
    info = solver.getInfo()
    solution = solver.getSolution()
    result = {
        "model_status": status.name,
        "run_time": float(solver.getRunTime()),
        "col_value": np.array(solution.col_value, dtype=np.float64),
        "row_dual": np.array(solution.row_dual, dtype=np.float64),
        "info": {k: _plain(getattr(info, k, None)) for k in INFO_FIELDS},
    }
    if status.name == "kInfeasible":
        try:
            result["dual_ray"] = np.array(solver.getDualRay()[2], dtype=np.float64)
        except Exception:  # noqa: BLE001  (CVXPY reads the ray only for LPs; a MIP may have none)
            result["dual_ray"] = np.zeros(lp.num_row_)
    return result


def _plain(value: Any) -> Any:
    """A picklable copy of a HiGHS info value (numbers stay numbers, enums become ints)."""
    if isinstance(value, (int, float)) or value is None:
        return value
    try:
        return int(value)
    except (TypeError, ValueError):
        return str(value)


def _resolve(runner: str) -> Callable[[dict[str, Any], Callable[[str, Any], None]], Any]:
    module, _, name = runner.partition(":")
    return getattr(importlib.import_module(module), name)


def serve() -> None:
    """The worker's loop: answer requests on stdin until it closes (see the module docstring)."""
    import signal

    # The parent handles Ctrl-C (it stops this process); a KeyboardInterrupt here would only print a traceback.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    out = os.fdopen(os.dup(sys.stdout.fileno()), "wb")
    # Everything else written to stdout (HiGHS's banner, stray prints) goes to the null device.
    null = os.open(os.devnull, os.O_WRONLY)
    os.dup2(null, sys.stdout.fileno())
    os.close(null)
    source = sys.stdin.buffer

    def emit(kind: str, payload: Any) -> None:
        write_message(out, (kind, payload))

    while True:
        try:
            runner, request = read_message(source)
        except EOFError:
            return
        try:
            result = _resolve(runner)(request, emit)
        except Exception as exc:  # noqa: BLE001  (reported to the parent, which raises it there)
            if os.environ.get("FAIRFLIP_DEBUG"):
                traceback.print_exc()
            write_message(out, ("error", f"{type(exc).__name__}: {exc}"))
        else:
            write_message(out, ("done", result))


# The command the parent runs: ``python -c BOOTSTRAP <json list: the parent's sys.path>``.
BOOTSTRAP = ("import json, sys; sys.path[:] = json.loads(sys.argv[1]); "
             "from fairflip._highs_worker import serve; serve()")
