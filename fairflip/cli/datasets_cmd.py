"""``fairflip datasets``: list the registered datasets with sizes and provenance."""

from __future__ import annotations

from ._args import add_plugin_arg


def add_parser(sub) -> None:
    """Attach the ``datasets`` subcommand to the subparsers ``sub`` (static data only, no heavy import)."""
    p = sub.add_parser("datasets", help="list datasets with sizes and provenance")
    p.add_argument("--json", action="store_true", help="print one JSON object on stdout")
    p.add_argument("--all", action="store_true", help="also load data-home datasets (slow for the large ones)")
    add_plugin_arg(p, dest="sub_plugins")
    p.set_defaults(run=run)


def table_lines(rows: list[dict]) -> list[str]:
    """The datasets as aligned text columns: name, rows, features, minority (share), source and licence or
    status."""
    head = ("name", "rows", "features", "minority", "source / status")
    body = []
    for r in rows:
        if "rows" in r:
            minority = ", ".join(f"{k}={v}" for k, v in r["minority"].items()) if isinstance(r["minority"], dict) \
                else str(r["minority"])
            body.append((r["name"], f"{r['rows']:,}", str(r["features"]), f"{minority} ({r['minority_share']:.1%})",
                         f"{r['source']}; licence: {r['licence']}"))
        else:
            body.append((r["name"], "-", "-", "-", f"{r['description']}: {r['status']}"))
    widths = [max(len(row[i]) for row in [head, *body]) for i in range(4)]
    right = (False, True, True, False)

    def fmt(row):
        cells = [c.rjust(w) if r else c.ljust(w) for c, w, r in zip(row[:4], widths, right)]
        return "  ".join([*cells, row[4]]).rstrip()

    return [fmt(head), *(fmt(row) for row in body)]


def run(args) -> int:
    """Run ``fairflip datasets`` with the parsed ``args``; returns the exit status (bad input raises FairflipError)."""
    from .._errors import FairflipError
    from ..datasets import REGISTRY
    from ._inputs import print_json

    rows = []
    for name, entry in sorted(REGISTRY.items()):
        row = {"name": name, "embedded": entry.embedded, "description": entry.description}
        if entry.embedded or args.all:
            try:
                data = entry.loader()
                row.update(data.summary())
                row["url"] = data.provenance.url
            except FairflipError as exc:
                row["status"] = str(exc)
        else:
            row["status"] = "loads from the data home (FAIRFLIP_DATA); use --all to load"
        rows.append(row)
    if args.json:
        print_json({"datasets": rows})
        return 0
    print("\n".join(table_lines(rows)))
    return 0
