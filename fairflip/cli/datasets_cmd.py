"""``fairflip datasets``: list the registered datasets with sizes and provenance."""

from __future__ import annotations

from .._errors import FairflipError
from ..datasets import REGISTRY
from ._common import print_json


def add_parser(sub) -> None:
    p = sub.add_parser("datasets", help="list datasets with sizes and provenance")
    p.add_argument("--json", action="store_true", help="print one JSON object on stdout")
    p.add_argument("--all", action="store_true", help="also load data-home datasets (slow for the large ones)")
    p.set_defaults(run=run)


def run(args) -> int:
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
    for r in rows:
        if "rows" in r:
            print(f"{r['name']:12s} {r['rows']:>7d} rows {r['features']:>3d} features  minority {r['minority']} "
                  f"({r['minority_share']:.1%})  {r['source']}; licence: {r['licence']}")
        else:
            print(f"{r['name']:12s} {r['description']}: {r['status']}")
    return 0
