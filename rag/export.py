"""Writing extraction results: JSONL, CSV, XLSX (one row per report, evidence beside each value)."""
from __future__ import annotations

import csv
import io
import json
from pathlib import Path

from . import GovqaError
from .extract import Extraction
from .schema import Schema


def to_jsonl(results: list[Extraction]) -> str:
    return "".join(json.dumps(r.as_json(), ensure_ascii=False) + "\n" for r in results)


def _rows(results: list[Extraction], schema: Schema, labels: bool) -> tuple[list[str], list[list]]:
    head = ["doc_id", "source"]
    for f in schema.fields:
        name = f.label if labels else f.key
        head += [name, f"{name}{'·原文' if labels else '_quote'}", f"{name}{'·位置' if labels else '_span'}"]
    rows = []
    for r in results:
        row = [r.doc_id, r.source]
        for f in schema.fields:
            fv = r.values.get(f.key)
            v = fv.value if fv else None
            ev = fv.evidence if fv else None
            row += [json.dumps(v, ensure_ascii=False) if isinstance(v, list) else v,
                    ev["quote"] if ev else None, f"{ev['start']}-{ev['end']}" if ev else None]
        rows.append(row)
    return head, rows


def to_csv(results: list[Extraction], schema: Schema) -> str:
    head, rows = _rows(results, schema, labels=False)
    buf = io.StringIO()
    w = csv.writer(buf)
    w.writerow(head)
    w.writerows([["" if x is None else x for x in row] for row in rows])
    return buf.getvalue()


def write_xlsx(results: list[Extraction], schema: Schema, path: Path) -> None:
    from openpyxl import Workbook
    from openpyxl.styles import Alignment, Font, PatternFill

    head, rows = _rows(results, schema, labels=True)
    wb = Workbook()
    ws = wb.active
    ws.title = schema.name[:31]
    ws.append(head)
    for row in rows:
        ws.append(row)
    for cell in ws[1]:
        cell.font = Font(bold=True)
        cell.fill = PatternFill("solid", fgColor="DDEBF7")
        cell.alignment = Alignment(wrap_text=True, vertical="center")
    for i, name in enumerate(head, 1):
        quote_col = name.endswith("·原文")
        width = 48 if quote_col else 14 if name.endswith("·位置") else max(12, min(30, len(name) * 2 + 2))
        ws.column_dimensions[ws.cell(1, i).column_letter].width = width
        if quote_col:
            for c in ws.iter_rows(min_row=2, min_col=i, max_col=i):
                c[0].alignment = Alignment(wrap_text=True, vertical="top")
    ws.freeze_panes = "C2"
    try:
        wb.save(path)
    except OSError as e:
        raise GovqaError(f"cannot write {path}: {e.strerror}") from None


def write(results: list[Extraction], schema: Schema, fmt: str, out: Path | None) -> str | None:
    """Write to `out`, or return the text for stdout (xlsx needs a file)."""
    if fmt == "xlsx":
        if out is None:
            raise GovqaError("xlsx output needs -o FILE")
        write_xlsx(results, schema, out)
        return None
    text = to_jsonl(results) if fmt == "jsonl" else to_csv(results, schema) if fmt == "csv" else None
    if text is None:
        raise GovqaError(f"unknown format '{fmt}' (jsonl, csv or xlsx)")
    if out is None:
        return text
    try:
        Path(out).write_text(text, encoding="utf-8-sig" if fmt == "csv" else "utf-8")
    except OSError as e:
        raise GovqaError(f"cannot write {out}: {e.strerror}") from None
    return None
