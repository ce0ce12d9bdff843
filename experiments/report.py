"""The report: figures (PNG and SVG), a self-contained HTML page and a Markdown file.

The HTML page embeds its figures (base64 PNG), so it can be mailed or archived on its own; the Markdown file links
the PNGs in ``figures/`` next to it. Every file is written through a temporary file and renamed, so a killed run
never leaves a half-written report.
"""

from __future__ import annotations

import base64
import html
import io
import os
from pathlib import Path

import pandas as pd

from fairflip._io import atomic_write

from .studies import StudyResult

PAPER_LABEL = "paper (approximate reading off the authors' poster)"


def _write_atomic(path: Path, data: bytes) -> None:
    atomic_write(path, lambda tmp: tmp.write_bytes(data))


def save_figures(results: list[StudyResult], folder: Path) -> dict[str, dict[str, Path]]:
    """Write every figure as ``<folder>/<name>.png`` and ``.svg``; returns name -> {"png": path, "svg": path}."""
    import matplotlib.pyplot as plt

    folder.mkdir(parents=True, exist_ok=True)
    out: dict[str, dict[str, Path]] = {}
    for res in results:
        for name, fig in res.figures.items():
            out[name] = {}
            for ext in ("png", "svg"):
                buf = io.BytesIO()
                fig.savefig(buf, format=ext, dpi=130 if ext == "png" else None, bbox_inches="tight")
                path = folder / f"{name}.{ext}"
                _write_atomic(path, buf.getvalue())
                out[name][ext] = path
            plt.close(fig)
    return out


def paper_table(results: list[StudyResult]) -> pd.DataFrame:
    """Our numbers beside the paper's approximate readings, one row per compared quantity."""
    rows = []
    for res in results:
        for r in res.paper_rows:
            rows.append({"study": f"{res.config.number}. {res.config.title}", "dataset": r["dataset"],
                         "quantity": r["quantity"], PAPER_LABEL: r["paper"], "fairflip (this run)": r["ours"]})
    return pd.DataFrame(rows, columns=["study", "dataset", "quantity", PAPER_LABEL, "fairflip (this run)"])


VERDICT_WORDS = {True: "reproduced", False: "not reproduced", None: "not judged"}


def verdict_table(results: list[StudyResult]) -> pd.DataFrame:
    """One row per study: its claim in the paper, whether it holds here, and the sample it was judged on."""
    rows = []
    for r in results:
        claim = not r.config.paper.startswith("not ")
        rows.append({"study": f"{r.config.number}. {r.config.title}", "paper's claim": r.config.paper,
                     "here": VERDICT_WORDS[r.holds] if claim else "extension (no claim)",
                     "finding": r.headline, "seeds": len(r.config.seeds), "rows": _sizes_text(r.config)})
    return pd.DataFrame(rows)


# ---------------------------------------------------------------- header


def git_commit(folder: str | os.PathLike | None = None) -> str:
    """The git commit of the fairflip checkout holding ``folder`` (default: this package), with ``+ uncommitted
    changes`` when tracked files differ from it; ``unknown`` outside a git checkout of fairflip."""
    import subprocess

    here = Path(folder) if folder is not None else Path(__file__).resolve().parent

    def git(*args: str) -> str:
        return subprocess.run(["git", "-C", str(here), *args], capture_output=True, text=True, timeout=10,
                              check=True).stdout.strip()

    try:
        top = Path(git("rev-parse", "--show-toplevel"))
        if not (top / "fairflip" / "__init__.py").is_file():
            return "unknown"
        commit = git("rev-parse", "HEAD")
        dirty = git("status", "--porcelain", "--untracked-files=no")
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return commit + (" + uncommitted changes" if dirty else "")


REPORTED_PACKAGES = ("numpy", "torch", "scikit-learn", "cvxpy", "highspy", "fairlearn", "scipy", "pandas",
                     "matplotlib")


def package_versions() -> dict[str, str]:
    """Python, fairflip and the libraries that decide the numbers, name -> version (``not installed``)."""
    import platform
    from importlib import metadata

    out = {"python": platform.python_version()}
    for pkg in ("fairflip", *REPORTED_PACKAGES):
        try:
            out[pkg] = metadata.version(pkg)
        except metadata.PackageNotFoundError:
            out[pkg] = "not installed"
    return out


def _dataset_rows(name: str) -> int | None:
    """Rows of the whole dataset (None when it cannot be loaded without a download)."""
    from .cells import _load_dataset

    try:
        return len(_load_dataset(name, None))
    except Exception:  # noqa: BLE001 -- a size is informative only
        return None


def _sizes_text(cfg) -> str:
    parts = []
    for ds in cfg.grid.get("datasets", []):
        n = cfg.max_rows(ds)
        parts.append(f"{ds} {f'{n:,}' if n else 'all'}")
    return ", ".join(parts)


def sample_sizes(results: list[StudyResult]) -> pd.DataFrame:
    """Rows used per dataset (columns) and study (rows): the subsample cap, or ``all (N)``."""
    datasets = sorted({ds for r in results for ds in r.config.grid.get("datasets", [])})
    full = {ds: _dataset_rows(ds) for ds in datasets}
    rows = []
    for r in results:
        row = {"study": f"{r.config.number}. {r.config.name}", "seeds": len(r.config.seeds)}
        for ds in datasets:
            if ds not in r.config.grid.get("datasets", []):
                row[ds] = ""
                continue
            n = r.config.max_rows(ds)
            total = full[ds]
            if n is None or (total is not None and n >= total):
                row[ds] = f"all ({total:,})" if total else "all"
            else:
                row[ds] = f"{n:,}" + (f" of {total:,}" if total else "")
        rows.append(row)
    return pd.DataFrame(rows)


def header_facts(results: list[StudyResult], run_info: dict) -> dict[str, str]:
    """The report's header: version, commit, date, mode, seeds, split, packages, and the run's own facts."""
    import datetime as _dt

    versions = package_versions()
    seeds = sorted({len(r.config.seeds) for r in results})
    seed_text = (f"{seeds[0]} per study (seeds 0 to {seeds[0] - 1})" if len(seeds) == 1 else
                 "; ".join(f"{r.config.name} {len(r.config.seeds)}" for r in results))
    facts = {"fairflip version": versions.pop("fairflip"), "git commit": git_commit(),
             "date": _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
             "mode": "quick (subsampled, fewer seeds and budgets)" if any(r.config.quick for r in results)
             else "full", "seeds": seed_text,
             "split": "stratified 70/30 train/test per seed; subsamples drawn once (seed 0) before the split",
             "packages": ", ".join(f"{k} {v}" for k, v in versions.items())}
    facts.update({k: str(v) for k, v in run_info.items() if k not in ("mode", "seeds")})
    return facts


def first_paragraph(results: list[StudyResult]) -> str:
    """What reproduced, what did not and why, what was not judged, and at what sample size."""
    paper = [r for r in results if not r.config.paper.startswith("not ")]
    ext = [r for r in results if r.config.paper.startswith("not ")]
    quick = any(r.config.quick for r in results)

    def items(rs):
        return "; ".join(f"study {r.config.number} ({r.config.name.replace('_', ' ')}: {r.headline or r.verdict})"
                         for r in rs)

    text = [f"This {'quick' if quick else 'full'} run tested {len(paper)} of the paper's claims"]
    seeds = sorted({len(r.config.seeds) for r in results})
    text[0] += (f" with {seeds[0]} seed{'s' if seeds[0] != 1 else ''} per study." if len(seeds) == 1 else
                f" with {seeds[0]} to {seeds[-1]} seeds per study.")
    for word, holds in (("Reproduced", True), ("Not reproduced", False), ("Not judged", None)):
        rs = [r for r in paper if r.holds is holds]
        if rs:
            why = (" (too few seeds, or a 90% confidence interval over seeds that straddles the criterion)"
                   if holds is None else "")
            text.append(f"{word}{why}: {items(rs)}.")
    if ext:
        text.append(f"Beyond the paper (no claim to test): {items(ext)}.")
    caps = {}
    for r in results:
        for ds in r.config.grid.get("datasets", []):
            caps.setdefault(ds, set()).add(r.config.max_rows(ds))
    varied = sorted(ds for ds, c in caps.items() if len(c) > 1 or c != {None})
    if varied:
        sizes = "; ".join(f"{ds}: " + ", ".join("all rows" if n is None else f"{n:,} rows"
                                               for n in sorted(caps[ds], key=lambda v: (v is None, v or 0)))
                          for ds in varied)
        text.append(f"Sample sizes: {'the quick run subsamples' if quick else 'this run subsamples'} ({sizes}; "
                    f"the table below gives each study's), so the no-flip baselines differ between sections; "
                    f"each section states its own. Verdicts compare with the paper's approximate numbers at these "
                    f"sizes and on our 70/30 splits, not the paper's (unstated) ones.")
    return " ".join(text)


def _md_table(frame: pd.DataFrame) -> str:
    if frame.empty:
        return "_(no rows)_\n"

    def cell(v) -> str:
        return "" if v is None or (isinstance(v, float) and pd.isna(v)) else str(v).replace("|", "\\|")

    lines = ["| " + " | ".join(map(str, frame.columns)) + " |", "|" + "---|" * len(frame.columns)]
    lines += ["| " + " | ".join(cell(v) for v in row) + " |" for row in frame.itertuples(index=False)]
    return "\n".join(lines) + "\n"


def _md_facts(facts: dict) -> list[str]:
    return [f"- **{k}**: {v}" for k, v in facts.items()]


def write_report(results: list[StudyResult], out: str | os.PathLike, *, run_info: dict,
                 files: dict[str, Path] | None = None) -> tuple[Path, Path]:
    """Write ``report.html`` and ``report.md`` (and ``figures/``) into ``out``.

    The report opens with a paragraph on what reproduced, what did not and why, and at what sample size; then a
    header (fairflip version, git commit, date, seeds, sample sizes, package versions), the verdicts, our
    numbers beside the paper's, and one section per study with its verdict, captioned figures and pivoted
    tables.

    Args:
        results: the summarised studies, in report order.
        out: output folder.
        run_info: facts about the run shown in the header (backend, cells, wall time, ...).
        files: description -> path of the run's other outputs (tidy table, store), listed with the report's own.

    Returns:
        (html path, markdown path).
    """
    out = Path(out)
    html_path, md_path = out / "report.html", out / "report.md"
    outputs = {"this report (HTML, figures embedded)": html_path, "this report (Markdown)": md_path,
               **(files or {}), "figures (PNG and SVG)": out / "figures"}
    figs = save_figures(results, out / "figures")
    papers, verdicts = paper_table(results), verdict_table(results)
    sizes = sample_sizes(results)
    facts = header_facts(results, run_info)
    lead = first_paragraph(results)
    intro = ("Test-set metrics unless marked in-sample (the firm trains on the flipped labels and is measured on "
             "held-out rows with their true labels); tables give mean ± standard deviation over seeds (the mean "
             "alone for one seed). EqOd is the mean of the TPR and FPR gaps. A claim is reproduced when the 90% (two one-sided 5% tests) "
             "confidence interval over seeds of each stated criterion lies inside it, not reproduced when it lies "
             "wholly outside, and not judged otherwise or with fewer than two seeds. The paper's numbers are "
             "approximate readings off the authors' poster.")

    md = ["# fairflip reproduction report\n", f"{lead}\n", f"{intro}\n", "## Run\n", *_md_facts(facts), "",
          "Rows used per study and dataset (subsample caps; the whole dataset otherwise):\n", _md_table(sizes),
          "Outputs:\n", *(f"- {what}: `{path}`" for what, path in outputs.items()), "", "## Summary\n",
          _md_table(verdicts), "\n### Our numbers beside the paper's\n", _md_table(papers)]
    parts = ["<!DOCTYPE html><html><head><meta charset='utf-8'><title>fairflip reproduction report</title>",
             "<style>body{font-family:sans-serif;max-width:1200px;margin:auto;padding:1em}"
             "table{border-collapse:collapse;font-size:12px;margin:0.5em 0}td,th{border:1px solid #ccc;"
             "padding:2px 6px}img{max-width:100%}.v{background:#f4f4f4;padding:0.5em}"
             ".lead{font-size:15px}figcaption{font-size:12px;color:#333;margin-bottom:1em}</style></head><body>",
             "<h1>fairflip reproduction report</h1>", f"<p class='lead'>{html.escape(lead)}</p>",
             f"<p>{html.escape(intro)}</p>", "<h2>Run</h2><ul>",
             *(f"<li><b>{html.escape(k)}</b>: {html.escape(v)}</li>" for k, v in facts.items()), "</ul>",
             "<p>Rows used per study and dataset (subsample caps; the whole dataset otherwise):</p>",
             sizes.to_html(index=False), "<p><b>Outputs:</b></p><ul>",
             *(f"<li>{html.escape(what)}: <code>{html.escape(str(path))}</code></li>"
               for what, path in outputs.items()),
             "</ul>", "<h2>Summary</h2>", verdicts.to_html(index=False),
             "<h3>Our numbers beside the paper's</h3>", papers.to_html(index=False)]
    fig_no = 0
    for res in results:
        c = res.config
        md += [f"\n## {c.number}. {c.title}\n", f"Claim in the {PAPER_LABEL}: {c.paper}\n", f"**{res.verdict}**\n"]
        parts += [f"<h2>{c.number}. {html.escape(c.title)}</h2>",
                  f"<p>Claim in the {html.escape(PAPER_LABEL)}: {html.escape(c.paper)}</p>",
                  f"<p class='v'><b>{html.escape(res.verdict)}</b></p>"]
        for name in res.figures:
            fig_no += 1
            png = figs[name]["png"]
            caption = f"Figure {fig_no} ({name}). {res.captions.get(name, '')}".strip()
            md.append(f"![{name}](figures/{png.name}) ([SVG](figures/{name}.svg))\n")
            md.append(f"*{caption}*\n")
            data = base64.b64encode(png.read_bytes()).decode()
            parts.append(f"<figure><img alt='{html.escape(name)}' src='data:image/png;base64,{data}'>"
                         f"<figcaption>{html.escape(caption)}</figcaption></figure>")
        tables = res.tables or ({"": res.table} if len(res.table) else {})
        for title, table in tables.items():
            if title:
                md.append(f"**{title}**\n")
                parts.append(f"<p><b>{html.escape(title)}</b></p>")
            md.append(_md_table(table))
            parts.append(table.to_html(index=False, na_rep=""))
        for note in res.notes:
            if note:
                md.append(f"- note: {note}\n")
                parts.append(f"<p><i>note: {html.escape(note)}</i></p>")
    parts.append("</body></html>")
    _write_atomic(html_path, "\n".join(parts).encode())
    _write_atomic(md_path, "\n".join(md).encode())
    return html_path, md_path
