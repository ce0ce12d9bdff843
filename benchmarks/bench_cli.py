"""Benchmark 9: start-up cost of the command line, as a ratio to importing the library.

Each command runs in a fresh interpreter (``sys.executable``), ``repeats`` times, interleaved so that a change in
the machine's load hits every command alike; the median wall time of each is reported with its ratio to
``python -c "import fairflip"`` (and, for scale, importing the heavy libraries, which every command paid before
the parser was built from static data). Every command also reports which heavy modules (torch, scikit-learn, pandas,
CVXPY, SciPy) were imported by the time it finished, so a parser that imports them shows up here.
"""

from __future__ import annotations

import json
import statistics
import subprocess
import sys
import time

HEAVY = ("torch", "sklearn", "pandas", "cvxpy", "scipy")

# Each probe runs the command in-process and then prints the heavy modules it loaded as JSON on stderr's last line.
_PROBE = """
import json, sys
heavy = {heavy!r}
def report():
    loaded = sorted(m for m in heavy if m in sys.modules)
    sys.stderr.write("\\nLOADED " + json.dumps(loaded) + "\\n")
{body}
"""

COMMANDS = {
    "import fairflip": "import fairflip\nreport()",
    "import torch, sklearn, pandas, cvxpy": ("import torch, sklearn.linear_model, pandas, cvxpy\n"
                                             "report()"),
    "fairflip --help": ("from fairflip.cli import main\ntry:\n    main(['--help'])\nexcept SystemExit:\n    pass\n"
                        "report()"),
    "fairflip flip --help": ("from fairflip.cli import main\ntry:\n    main(['flip', '--help'])\n"
                             "except SystemExit:\n    pass\nreport()"),
    "fairflip flip --bad-option": ("from fairflip.cli import main\nimport contextlib, io\n"
                                   "with contextlib.redirect_stderr(io.StringIO()):\n    try:\n"
                                   "        main(['flip', '--bad-option'])\n    except SystemExit:\n        pass\n"
                                   "report()"),
}


def _run_once(body: str) -> tuple[float, list[str]]:
    code = _PROBE.format(heavy=HEAVY, body=body)
    start = time.perf_counter()
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
    seconds = time.perf_counter() - start
    lines = [line for line in done.stderr.splitlines() if line.startswith("LOADED ")]
    if done.returncode != 0 or not lines:
        raise RuntimeError(f"probe failed (exit {done.returncode}): {done.stderr[-500:]}")
    return seconds, json.loads(lines[-1][len("LOADED "):])


def run(*, repeats: int = 7, device: str | None = None) -> dict:
    """Median start-up seconds of each command over ``repeats`` interleaved runs and its ratio to the import.

    Returns:
        dict with ``rows``: one per command (``command``, ``median_s``, ``ratio_to_import``, ``heavy_loaded``).
    """
    times: dict[str, list[float]] = {name: [] for name in COMMANDS}
    loaded: dict[str, list[str]] = {}
    for _ in range(repeats):
        for name, body in COMMANDS.items():
            seconds, heavy = _run_once(body)
            times[name].append(seconds)
            loaded[name] = heavy
    base = statistics.median(times["import fairflip"])
    rows = [{"command": name, "median_s": round(statistics.median(ts), 4),
             "ratio_to_import": round(statistics.median(ts) / base, 3),
             "heavy_loaded": ",".join(loaded[name]) or "-"} for name, ts in times.items()]
    return {"benchmark": "cli", "repeats": repeats, "device": "cpu", "rows": rows}


if __name__ == "__main__":
    print(json.dumps(run(repeats=int(sys.argv[1]) if len(sys.argv) > 1 else 7), indent=2))
