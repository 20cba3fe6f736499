"""Output for people (rich) and machines (JSON). The CLI only picks one."""
from __future__ import annotations

import json
import sys

from rich.console import Console
from rich.table import Table
from rich.text import Text

console = Console()
err_console = Console(stderr=True)


def print_json(obj) -> None:
    sys.stdout.write(json.dumps(obj, ensure_ascii=False, indent=2) + "\n")


def docs_table(docs: list[dict]) -> Table:
    t = Table(title=f"{len(docs)} reports", show_lines=False)
    for col in ("doc_id", "agency", "year", "type", "published", "chunks"):
        t.add_column(col, overflow="fold")
    for d in docs:
        t.add_row(d["doc_id"], d["agency"], str(d["year"] or ""), d["report_type"], d["published"], str(d["chunks"]))
    return t


def hits_view(hits) -> list:
    out = []
    for i, h in enumerate(hits, 1):
        head = Text(f"[{i}] ", style="bold cyan")
        head.append(f"{h.agency or h.doc_id} {h.year or ''}", style="bold")
        head.append(f"  {h.section or '(开头)'}", style="dim")
        head.append(f"  {h.doc_id} [{h.start}:{h.end}]  score {h.score:.4f}", style="dim")
        out.append(head)
        body = h.text.strip().replace("\n", " ")
        out.append(Text(body[:400] + ("…" if len(body) > 400 else "")))
        out.append(Text(""))
    return out
