"""Output for people (rich) and machines (JSON). The CLI only picks one."""
from __future__ import annotations

import json
import sys

from rich.console import Console
from rich.table import Table
from rich.text import Text

console = Console()
# soft_wrap: a warning naming a file stays on one line even when stderr is not a terminal
err_console = Console(stderr=True, soft_wrap=True)


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


def _highlight_numbers(text: str, style: str = "bold yellow") -> Text:
    import re

    t = Text(text)
    for m in re.finditer(r"\d+(?:[.,]\d+)*\s*(?:%|％|万万元|万元|亿元|元|件|个|起|项|次|人次|人)?", text):
        t.stylize(style, m.start(), m.end())
    return t


def answer_view(a) -> list:
    """An answer for people: the answer, then its numbered citations with the quote highlighted."""
    out = []
    style = "bold red" if a.refused else "bold"
    out.append(Text(a.answer, style=style))
    if a.citations:
        out.append(Text(""))
    for c in a.citations:
        head = Text(f"[{c.n}] ", style="bold cyan")
        head.append(f"{c.agency} {c.year or ''}", style="bold")
        if c.section:
            head.append(f" · {c.section}", style="dim")
        head.append(f"  ({c.doc_id} {c.start}-{c.end})", style="dim")
        out.append(head)
        q = Text("    “", style="green")
        q.append_text(_highlight_numbers(c.quote.strip().replace("\n", " ")))
        q.append("”", style="green")
        out.append(q)
    meta = f"mode: {a.mode}"
    if a.usage:
        meta += f" · tokens: {a.usage.get('total_tokens', 0)}"
    out.append(Text(meta, style="dim"))
    return out


def citation_detail(c, original: str) -> list:
    """/sources: the citation's surroundings in the original, the quoted span marked."""
    lo = max(0, original.rfind("\n", 0, max(0, c.start - 200)) + 1)
    hi = original.find("\n", min(len(original), c.end + 200))
    hi = len(original) if hi < 0 else hi
    t = Text()
    t.append(original[lo:c.start])
    t.append(original[c.start:c.end], style="bold reverse")
    t.append(original[c.end:hi])
    head = Text(f"[{c.n}] {c.agency} {c.year or ''} · {c.section}  {c.source} [{c.start}:{c.end}]", style="bold cyan")
    return [head, t, Text("")]
