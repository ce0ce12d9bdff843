"""``fairflip reproduce``: run the paper's studies and fairflip's extensions, resumably, and write the report."""

from __future__ import annotations

from . import _names
from ._args import add_plugin_arg


def add_parser(sub) -> None:
    """Attach the ``reproduce`` subcommand to the subparsers ``sub`` (static data only, no heavy import)."""
    p = sub.add_parser("reproduce", help="run the studies (resumable) and write an HTML and Markdown report")
    p.add_argument("--quick", action="store_true",
                   help="about 10 minutes on 2 cores: COMPAS and Adult (subsampled), 3 seeds, fewer budgets")
    p.add_argument("--studies", nargs="+", choices=_names.STUDIES, metavar="STUDY",
                   help=f"studies to run (default: all): {', '.join(_names.STUDIES)}")
    p.add_argument("--out", default="results", help="output folder; a rerun resumes from its store (results/)")
    p.add_argument("--backend", choices=["local", "ray"], default="local",
                   help="local process pool (default) or Ray")
    p.add_argument("--address", help="Ray cluster address (auto, HOST:6379 or ray://HOST:10001); with --backend ray")
    p.add_argument("--workers", default=None,
                   help="local worker processes, or CPUs of a local Ray instance (default: all cores; at most 1024)")
    p.add_argument("--seeds", default=None, help="number of seeds (default: 5, or 3 with --quick; at most 1000)")
    p.add_argument("--configs", help="folder of study configs (<study>.toml) to use instead of the packaged ones")
    p.add_argument("--no-progress", action="store_true", help="no progress bars")
    p.add_argument("--recover", action="store_true",
                   help="if the results store in --out is damaged, move it aside (results.sqlite.damaged-<time>), "
                        "keep its readable rows and resume from them; without it a damaged store is an error")
    add_plugin_arg(p, dest="sub_plugins")
    p.set_defaults(run=run)


MAX_WORKERS = 1024


def _check_configs(args, names: list[str], seeds: int | None) -> None:
    """Load every study config before any work, so a broken one is one clear error naming its file."""
    from pathlib import Path

    from .._errors import FairflipError
    from ..experiments.study_kit import load_config

    if args.configs is not None:
        folder = Path(args.configs)
        if not folder.is_dir():
            raise FairflipError(f"--configs {args.configs!r} is not a folder")
    for name in names:
        try:
            load_config(name, quick=args.quick, seeds=seeds, folder=args.configs)
        except FairflipError as exc:
            raise FairflipError(f"--configs: study '{name}': {exc}") from None
        except Exception as exc:  # a TOML syntax error, a missing table: the config's fault, named as such
            where = f"{args.configs}/{name}.toml" if args.configs else f"the packaged {name}.toml"
            raise FairflipError(f"--configs: {where}: {type(exc).__name__}: {' '.join(str(exc).split())}") from None


def _check_store(out: str, recover: bool) -> None:
    """A damaged store in ``out`` is an error naming --recover; with ``recover`` it is moved aside and its readable
    rows are salvaged (nothing happens to a sound or absent store)."""
    from pathlib import Path

    from .._errors import FairflipError
    from ..experiments.store import ResultStore
    from ._output import warn

    path = Path(out) / ResultStore.FILENAME
    problem = ResultStore.diagnose(path)
    if problem is None:
        return
    if not recover:
        raise FairflipError(f"--out: the results store {str(path)!r} {problem}; rerun with --recover to move it "
                            "aside and resume from its readable rows, or choose another --out")
    with ResultStore(out, recover=True) as store:
        moved, rows = store.recovered
    warn(f"--recover: the damaged results store was moved to {moved}; {rows} readable row(s) were kept")


def run(args) -> int:
    """Run ``fairflip reproduce`` with the parsed ``args``; returns the exit status (bad input raises FairflipError)."""
    import os
    import sys

    from .._errors import FairflipError
    from .._io import check_output_dir
    from ._args import MAX_SEEDS, parse_int

    seeds = parse_int(args.seeds, "--seeds", low=1, high=MAX_SEEDS)
    workers = parse_int(args.workers, "--workers", low=1, high=MAX_WORKERS)
    if args.address is not None and args.backend != "ray":
        raise FairflipError("--address names a Ray cluster; it needs --backend ray")
    check_output_dir(args.out, name="--out")
    names = list(args.studies) if args.studies else list(_names.STUDIES)
    _check_configs(args, names, seeds)
    _check_store(args.out, args.recover)

    from ..experiments.reproduce import reproduce

    workers = workers if workers is not None else max(1, os.cpu_count() or 1)
    summary = reproduce(out=args.out, studies=args.studies, quick=args.quick, seeds=seeds,
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
