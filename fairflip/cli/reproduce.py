"""``fairflip reproduce``: run the paper's studies and fairflip's extensions, resumably, and write the report."""

from __future__ import annotations

import os
import sys


def add_parser(sub) -> None:
    from fairflip.experiments.studies import STUDY_ORDER

    p = sub.add_parser("reproduce", help="run the studies (resumable) and write an HTML and Markdown report")
    p.add_argument("--quick", action="store_true",
                   help="a few minutes on 2 cores: COMPAS and Adult (subsampled), fewer seeds and budgets")
    p.add_argument("--studies", nargs="+", choices=STUDY_ORDER, metavar="STUDY",
                   help=f"studies to run (default: all): {', '.join(STUDY_ORDER)}")
    p.add_argument("--out", default="results", help="output folder; a rerun resumes from its store (results/)")
    p.add_argument("--backend", choices=["local", "ray"], default="local",
                   help="local process pool (default) or Ray")
    p.add_argument("--address", help="Ray cluster address (auto, HOST:6379 or ray://HOST:10001); with --backend ray")
    p.add_argument("--workers", type=int, default=None,
                   help="local worker processes, or CPUs of a local Ray instance (default: all cores)")
    p.add_argument("--seeds", type=int, default=None, help="number of seeds (default: 5, or 2 with --quick)")
    p.add_argument("--configs", help="folder of study configs (<study>.toml) to use instead of the packaged ones")
    p.add_argument("--no-progress", action="store_true", help="no progress bars")
    p.set_defaults(run=run)


def run(args) -> int:
    from fairflip.experiments.reproduce import reproduce

    workers = args.workers if args.workers is not None else max(1, os.cpu_count() or 1)
    summary = reproduce(out=args.out, studies=args.studies, quick=args.quick, seeds=args.seeds,
                        backend=args.backend, workers=workers, address=args.address,
                        progress=not args.no_progress and sys.stderr.isatty(), configs=args.configs)
    run_ = summary.run
    for cell, err in run_.failed[:5]:
        sys.stderr.write(f"fairflip: cell {cell.label()} failed: {err.strip().splitlines()[-1]}\n")
    held = sum(r.holds is True for r in summary.results)
    judged = sum(r.holds is not None for r in summary.results)
    print(f"fairflip reproduce: {run_.planned} cells ({run_.reused} reused, {run_.computed} computed, "
          f"{len(run_.failed)} failed) in {summary.wall_s:.0f} s; the paper's claim held in {held} of {judged} "
          f"judged studies; report {summary.html} (Markdown: {summary.markdown}); results table {summary.export}; "
          f"store {summary.store}")
    return 1 if run_.failed else 0
