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
    """Our numbers beside the paper's approximate readings, one row per compared quantity, plus each verdict."""
    rows = []
    for res in results:
        for r in res.paper_rows:
            rows.append({"study": f"{res.config.number}. {res.config.title}", "dataset": r["dataset"],
                         "quantity": r["quantity"], PAPER_LABEL: r["paper"], "fairflip (this run)": r["ours"]})
    return pd.DataFrame(rows, columns=["study", "dataset", "quantity", PAPER_LABEL, "fairflip (this run)"])


def verdict_table(results: list[StudyResult]) -> pd.DataFrame:
    """One row per study: its claim in the paper and whether it holds here."""
    return pd.DataFrame([{"study": f"{r.config.number}. {r.config.title}", "paper's claim": r.config.paper,
                          "holds here": {True: "yes", False: "no", None: "-"}[r.holds]} for r in results])


def _md_table(frame: pd.DataFrame) -> str:
    if frame.empty:
        return "_(no rows)_\n"

    def cell(v) -> str:
        return "" if v is None or (isinstance(v, float) and pd.isna(v)) else str(v).replace("|", "\\|")

    lines = ["| " + " | ".join(map(str, frame.columns)) + " |", "|" + "---|" * len(frame.columns)]
    lines += ["| " + " | ".join(cell(v) for v in row) + " |" for row in frame.itertuples(index=False)]
    return "\n".join(lines) + "\n"


def write_report(results: list[StudyResult], out: str | os.PathLike, *, run_info: dict,
                 files: dict[str, Path] | None = None) -> tuple[Path, Path]:
    """Write ``report.html`` and ``report.md`` (and ``figures/``) into ``out``.

    Args:
        results: the summarised studies, in report order.
        out: output folder.
        run_info: facts about the run shown at the top (mode, seeds, backend, cells, wall time, ...).
        files: description -> path of the run's other outputs (tidy table, store), listed at the top with the
            report's own files.

    Returns:
        (html path, markdown path).
    """
    out = Path(out)
    html_path, md_path = out / "report.html", out / "report.md"
    outputs = {"this report (HTML, figures embedded)": html_path, "this report (Markdown)": md_path,
               **(files or {}), "figures (PNG and SVG)": out / "figures"}
    figs = save_figures(results, out / "figures")
    papers, verdicts = paper_table(results), verdict_table(results)
    info = "; ".join(f"{k}: {v}" for k, v in run_info.items())
    intro = ("Test-set metrics (the firm trains on the flipped labels and is measured on held-out rows with their "
             "true labels); mean ± standard deviation over seeds. EqOd is the mean of the TPR and FPR gaps. "
             "The paper's numbers are approximate readings off the authors' poster.")

    md = ["# fairflip reproduction report\n", f"{intro}\n", f"Run: {info}\n", "Outputs:\n",
          *(f"- {what}: `{path}`" for what, path in outputs.items()), "", "## Summary\n",
          _md_table(verdicts), "\n### Our numbers beside the paper's\n", _md_table(papers)]
    parts = ["<!DOCTYPE html><html><head><meta charset='utf-8'><title>fairflip reproduction report</title>",
             "<style>body{font-family:sans-serif;max-width:1200px;margin:auto;padding:1em}"
             "table{border-collapse:collapse;font-size:12px;margin:0.5em 0}td,th{border:1px solid #ccc;"
             "padding:2px 6px}img{max-width:100%}.v{background:#f4f4f4;padding:0.5em}</style></head><body>",
             "<h1>fairflip reproduction report</h1>", f"<p>{html.escape(intro)}</p>",
             f"<p><b>Run:</b> {html.escape(info)}</p>", "<p><b>Outputs:</b></p><ul>",
             *(f"<li>{html.escape(what)}: <code>{html.escape(str(path))}</code></li>"
               for what, path in outputs.items()),
             "</ul>", "<h2>Summary</h2>", verdicts.to_html(index=False),
             "<h3>Our numbers beside the paper's</h3>", papers.to_html(index=False)]
    for res in results:
        c = res.config
        md += [f"\n## {c.number}. {c.title}\n", f"Claim in the {PAPER_LABEL}: {c.paper}\n", f"**{res.verdict}**\n"]
        parts += [f"<h2>{c.number}. {html.escape(c.title)}</h2>",
                  f"<p>Claim in the {html.escape(PAPER_LABEL)}: {html.escape(c.paper)}</p>",
                  f"<p class='v'><b>{html.escape(res.verdict)}</b></p>"]
        for name in res.figures:
            png = figs[name]["png"]
            md.append(f"![{name}](figures/{png.name}) ([SVG](figures/{name}.svg))\n")
            data = base64.b64encode(png.read_bytes()).decode()
            parts.append(f"<img alt='{html.escape(name)}' src='data:image/png;base64,{data}'>")
        md.append(_md_table(res.table))
        parts.append(res.table.to_html(index=False, na_rep=""))
        for note in res.notes:
            md.append(f"- note: {note}\n")
            parts.append(f"<p><i>note: {html.escape(note)}</i></p>")
    parts.append("</body></html>")
    _write_atomic(html_path, "\n".join(parts).encode())
    _write_atomic(md_path, "\n".join(md).encode())
    return html_path, md_path
