"""Batch extraction: resume after an interruption, failures recorded and retried, exports (JSONL, CSV, XLSX)."""
from __future__ import annotations

import csv
import io
import json
import shutil
import sqlite3
import sys

import pytest

from rag.batch import run_batch
from rag.config import load_settings
from rag.export import to_csv, to_jsonl, write, write_xlsx
from rag.index import Store
from rag.schema import default_schema
from tests.conftest import S000, S001, S002, S003, S004, ALL  # noqa: E402



@pytest.fixture()
def store_copy(tmp_path, sample_store_path):
    """A private copy of the sample store: batches write their cache into it."""
    path = tmp_path / "store"
    shutil.copytree(sample_store_path, path)
    return path


def _open(path):
    return Store(load_settings(store=path))


def _cached(path) -> dict[str, str]:
    db = sqlite3.connect(path / "govqa.db")
    try:
        return dict(db.execute("SELECT doc_id, status FROM extractions"))
    except sqlite3.OperationalError:
        return {}
    finally:
        db.close()


class Recorder:
    """fail_on hook: records each report the batch works on, and can raise for chosen ones."""

    def __init__(self, raise_at: int | None = None, exc: BaseException | None = None, fail_ids=()):
        self.seen: list[str] = []
        self.raise_at, self.exc, self.fail_ids = raise_at, exc, set(fail_ids)

    def __call__(self, doc_id: str) -> None:
        self.seen.append(doc_id)
        if self.raise_at is not None and len(self.seen) == self.raise_at:
            raise self.exc
        if doc_id in self.fail_ids:
            raise RuntimeError(f"simulated failure on {doc_id}")


def test_resume_after_interrupt(store_copy):
    schema = default_schema()
    store = _open(store_copy)
    settings = store.settings
    # Ctrl-C while the 3rd report is being worked on
    first = Recorder(raise_at=3, exc=KeyboardInterrupt())
    with pytest.raises(KeyboardInterrupt):
        run_batch(store, ALL, schema, settings, fail_on=first)
    assert first.seen == ALL[:3]
    store.close()

    # what was finished survived the interruption (a fresh connection sees it)
    assert _cached(store_copy) == {S000: "ok", S001: "ok"}

    store = _open(store_copy)
    second = Recorder()
    progress = []
    summary = run_batch(store, ALL, schema, settings, fail_on=second, progress=lambda d, t: progress.append((d, t)))
    assert summary.skipped == [S000, S001]
    assert summary.done == [S002, S003, S004]
    assert second.seen == [S002, S003, S004], "a finished report was worked on twice"
    assert summary.failed == {}
    assert [r.doc_id for r in summary.results] == ALL
    assert progress[0] == (2, 5) and progress[-1] == (5, 5)
    assert _cached(store_copy) == {d: "ok" for d in ALL}

    # cached results are the same as fresh ones
    fresh = {d: json.loads(r.to_cache()) for d, r in ((r.doc_id, r) for r in summary.results)}
    assert fresh[S001]["values"]["penalty_cases"]["value"] == 152
    third = Recorder()
    again = run_batch(store, ALL, schema, settings, fail_on=third)
    assert again.skipped == ALL and again.done == [] and third.seen == []
    assert [json.loads(r.to_cache())["values"] for r in again.results] == [fresh[d]["values"] for d in ALL]
    store.close()


def test_failed_report_is_recorded_and_retried(store_copy):
    schema = default_schema()
    store = _open(store_copy)
    hook = Recorder(fail_ids={S002})
    summary = run_batch(store, ALL, schema, store.settings, fail_on=hook)
    assert list(summary.failed) == [S002]
    assert "RuntimeError" in summary.failed[S002] and "simulated failure" in summary.failed[S002]
    assert summary.done == [S000, S001, S003, S004]
    assert [r.doc_id for r in summary.results] == [S000, S001, S003, S004]
    assert _cached(store_copy) == {S000: "ok", S001: "ok", S002: "failed", S003: "ok", S004: "ok"}

    retry = Recorder()
    summary = run_batch(store, ALL, schema, store.settings, fail_on=retry)
    assert retry.seen == [S002], "only the failed report is retried"
    assert summary.done == [S002] and summary.failed == {}
    assert summary.skipped == [S000, S001, S003, S004]
    assert [r.doc_id for r in summary.results] == ALL
    assert _cached(store_copy) == {d: "ok" for d in ALL}
    store.close()


def test_changed_schema_is_not_served_from_cache(store_copy):
    store = _open(store_copy)
    schema = default_schema()
    run_batch(store, ALL, schema, store.settings)
    edited = schema.model_copy(update={"fields": schema.fields[:5]})
    summary = run_batch(store, ALL, edited, store.settings)
    assert summary.skipped == [] and summary.done == ALL
    assert all(set(r.values) == {f.key for f in edited.fields} for r in summary.results)
    store.close()


def test_unknown_doc_id_in_batch(store_copy):
    from rag import GovqaError

    store = _open(store_copy)
    with pytest.raises(GovqaError, match="no report 'nope'"):
        run_batch(store, [S000, "nope"], default_schema(), store.settings)
    store.close()


def test_cli_extract_exits_nonzero_when_every_report_fails(store_copy, monkeypatch, capsys):
    import rag.batch

    sys.path.insert(0, str(__import__("pathlib").Path(__file__).resolve().parent.parent))
    import cli

    def boom(store, doc_id, schema):
        raise RuntimeError("simulated failure")

    monkeypatch.setattr(rag.batch, "extract_rules", boom)
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    monkeypatch.delenv("OPENAI_BASE_URL", raising=False)
    monkeypatch.setattr(sys, "argv", ["govqa", "extract", "--all", "--store", str(store_copy)])
    code = 0
    try:
        cli.main()
    except SystemExit as e:
        code = e.code
    out = capsys.readouterr()
    assert "failed 5" in out.err  # the batch reports the failures
    assert out.err.count("simulated failure") == 5
    assert out.out == ""
    assert code not in (0, None), "a batch where every report failed must not exit 0"


# ---------------------------------------------------------------------------------------------
# exports
# ---------------------------------------------------------------------------------------------

@pytest.fixture()
def results(store_copy):
    store = _open(store_copy)
    summary = run_batch(store, ALL, default_schema(), store.settings)
    originals = {d: store.original(d) for d in ALL}
    store.close()
    return summary.results, originals


def test_jsonl_export(results):
    res, originals = results
    schema = default_schema()
    lines = to_jsonl(res).splitlines()
    assert len(lines) == 5
    keys = {f.key for f in schema.fields}
    for line, doc_id in zip(lines, ALL):
        row = json.loads(line)
        assert set(row) == {"doc_id", "source", "values", "evidence"}
        assert row["doc_id"] == doc_id and row["source"].endswith(f"{doc_id}.txt")
        assert set(row["values"]) == keys and set(row["evidence"]) == keys
        for k, ev in row["evidence"].items():
            if row["values"][k] is None:
                assert ev is None
            if ev is not None:
                assert originals[doc_id][ev["start"]:ev["end"]] == ev["quote"]
    first = json.loads(lines[1])
    assert first["values"]["penalty_cases"] == 152 and first["values"]["penalty_amount_wan"] == 121
    assert "湘鄉市" in json.loads(lines[4])["evidence"]["agency"]["quote"]  # evidence in the report's own script


def test_csv_export(results):
    res, originals = results
    schema = default_schema()
    rows = list(csv.DictReader(io.StringIO(to_csv(res, schema))))
    assert [r["doc_id"] for r in rows] == ALL
    for f in schema.fields:
        assert {f.key, f"{f.key}_quote", f"{f.key}_span"} <= set(rows[0])
    by = {r["doc_id"]: r for r in rows}
    assert by[S001]["penalty_cases"] == "152"
    assert "152件" in by[S001]["penalty_cases_quote"]
    assert by[S002]["court_appearance_rate"] == "" and by[S002]["court_appearance_rate_quote"] == ""
    for r in rows:
        for f in schema.fields:
            span = r[f"{f.key}_span"]
            if span:
                a, b = map(int, span.split("-"))
                assert originals[r["doc_id"]][a:b] == r[f"{f.key}_quote"]


def test_cli_csv_export_to_file(cli, store_copy, tmp_path):
    out = tmp_path / "facts.csv"
    r = cli("extract", "--all", "--format", "csv", "-o", str(out), store=store_copy)
    assert r.returncode == 0, r.stderr
    assert r.stdout == ""
    raw = out.read_bytes()
    assert raw.startswith(b"\xef\xbb\xbf")  # BOM: spreadsheet programs open it as UTF-8
    rows = list(csv.DictReader(io.StringIO(raw.decode("utf-8-sig"))))
    assert [x["doc_id"] for x in rows] == ALL
    assert "done 5" in r.stderr
    # the run filled the cache: a second run skips everything
    r2 = cli("extract", "--all", "--format", "jsonl", store=store_copy)
    assert r2.returncode == 0 and "skipped (cached) 5" in r2.stderr
    assert len(r2.stdout.splitlines()) == 5


def test_xlsx_export(results, tmp_path):
    from openpyxl import load_workbook

    res, _ = results
    schema = default_schema()
    path = tmp_path / "out.xlsx"
    write_xlsx(res, schema, path)
    wb = load_workbook(path)
    ws = wb.active
    head = [c.value for c in ws[1]]
    assert head[:2] == ["doc_id", "source"]
    for f in schema.fields:
        assert f.label in head and f"{f.label}·原文" in head
    assert "单位" in head and "行政机关负责人出庭应诉率" in head and "罚没金额（万元）" in head
    assert all(k not in head for k in ("court_appearance_rate", "penalty_cases"))
    assert ws.max_row == 6
    assert [ws.cell(i, 1).value for i in range(2, 7)] == ALL
    # the header stays in view when scrolling
    assert ws.freeze_panes is not None
    assert int("".join(ch for ch in ws.freeze_panes if ch.isdigit())) >= 2
    # widths set, quote columns wide
    from openpyxl.utils import get_column_letter

    widths = {head[i - 1]: ws.column_dimensions[get_column_letter(i)].width for i in range(1, len(head) + 1)}
    assert all(w and w >= 10 for w in widths.values()), widths
    assert widths["行政处罚案件数·原文"] > widths["行政处罚案件数"]
    col = head.index("行政处罚案件数") + 1
    assert ws.cell(3, col).value == 152
    assert "152件" in ws.cell(3, head.index("行政处罚案件数·原文") + 1).value


def test_cli_xlsx_export(cli, store_copy, tmp_path):
    from openpyxl import load_workbook

    out = tmp_path / "facts.xlsx"
    r = cli("extract", "--all", "--format", "xlsx", "-o", str(out), store=store_copy)
    assert r.returncode == 0, r.stderr
    ws = load_workbook(out).active
    assert ws.max_row == 6 and ws.cell(1, 3).value == "单位"


def test_xlsx_needs_an_output_file(cli, store_copy):
    r = cli("extract", "--all", "--format", "xlsx", store=store_copy)
    assert r.returncode != 0
    assert r.stdout == ""
    lines = [x for x in r.stderr.splitlines() if x.strip()]
    assert len(lines) == 1 and "xlsx" in lines[0] and "-o" in lines[0]
    assert "Traceback" not in r.stderr


def test_export_write_errors(results, tmp_path):
    from rag import GovqaError

    res, _ = results
    with pytest.raises(GovqaError, match="-o"):
        write(res, default_schema(), "xlsx", None)
    with pytest.raises(GovqaError, match="unknown format"):
        write(res, default_schema(), "pdf", None)
    assert write(res, default_schema(), "jsonl", None).count("\n") == 5
