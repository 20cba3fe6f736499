"""The CLI as a user runs it (`python cli.py …` in a subprocess): bad input, JSON shapes, no torch by default."""
from __future__ import annotations

import codecs
import json
import sqlite3
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from tests.conftest import TINY  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent

S000 = "000_dd66ffd76b4a3192"
S001 = "001_6abc9caa6ce6874c"
S004 = "004_85ab2a4bf3520aa2"
ALL = [S000, S001, "002_7d80a77d3b41ec6f", "003_7c2a89f2d6290ff3", S004]


HIT_KEYS = {"doc_id", "source", "agency", "year", "section", "text", "start", "end", "score"}
DOC_KEYS = {"doc_id", "source", "title", "agency", "region", "year", "report_type", "published", "chunks"}


def _snapshot(store: Path):
    db = sqlite3.connect(store / "govqa.db")
    try:
        return (db.execute("SELECT doc_id, sha256, n_chunks, ingested_at FROM docs ORDER BY doc_id").fetchall(),
                db.execute('SELECT chunk_id, start, "end", text FROM chunks ORDER BY chunk_id').fetchall(),
                db.execute("SELECT key, value FROM meta ORDER BY key").fetchall())
    finally:
        db.close()


def _no_traceback(r: subprocess.CompletedProcess):
    assert "Traceback" not in r.stderr and "Traceback" not in r.stdout, r.stderr


def _one_line_error(r: subprocess.CompletedProcess, name: str):
    assert r.returncode != 0, (r.stdout, r.stderr)
    _no_traceback(r)
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1, r.stderr
    assert name in lines[0], lines[0]


@pytest.fixture(scope="module")
def tiny_store(tmp_path_factory):
    """A store holding only the tiny report, ingested through the CLI."""
    from tests.conftest import run_cli

    root = tmp_path_factory.mktemp("cli")
    report = root / "qingshan.txt"
    report.write_text(TINY, encoding="utf-8")
    store = root / "store"
    r = run_cli("ingest", str(report), "--json", store=store)
    assert r.returncode == 0, r.stderr
    _no_traceback(r)
    out = json.loads(r.stdout)
    assert out["added"] == ["qingshan"] and out["chunks"] > 0 and out["errors"] == []
    assert set(out) == {"added", "updated", "skipped", "errors", "warnings", "chunks", "seconds", "reindexed"}
    return store


def _bad_input(kind: str, root: Path) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    if kind == "empty":
        p = root / "empty_report.txt"
        p.write_bytes(b"")
    elif kind == "blank":
        p = root / "blank_report.txt"
        p.write_bytes(" \n\u3000\n".encode("utf-8"))
    elif kind == "binary":
        p = root / "binary_report.txt"
        p.write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(range(256)) * 4)
    elif kind == "garbled":
        import random

        p = root / "garbled_report.txt"
        p.write_bytes(random.Random(11).randbytes(4000).replace(b"\x00", b"\xa7"))
    elif kind == "missing":
        p = root / "missing_report.txt"
    elif kind == "pdf":
        p = root / "report.pdf"
        p.write_bytes(b"%PDF-1.4\n" + TINY.encode("utf-8"))
    elif kind == "boilerplate":
        p = root / "header_only.txt"
        p.write_text("当前位置: |\n索引号: | 1 |\n访问次数:\n打印本页 关闭窗口\n", encoding="utf-8")
    elif kind == "bom_gbk":
        p = root / "bom_gbk_report.txt"
        p.write_bytes(codecs.BOM_UTF8 + TINY.encode("gbk"))
    else:  # pragma: no cover
        raise ValueError(kind)
    return p


BAD = ["empty", "blank", "binary", "garbled", "missing", "pdf", "boilerplate", "bom_gbk"]


@pytest.mark.parametrize("kind", BAD)
def test_ingest_bad_input_one_line_error(cli, tiny_store, tmp_path, kind):
    path = _bad_input(kind, tmp_path / "in")
    before = _snapshot(tiny_store)
    r = cli("ingest", str(path), store=tiny_store)
    _one_line_error(r, path.name)
    assert r.stderr.startswith("govqa: error:")
    assert _snapshot(tiny_store) == before


def test_ingest_bad_file_next_to_good_file_writes_nothing(cli, tiny_store, tmp_path):
    good = tmp_path / "another_good.txt"
    good.write_text(TINY.replace("青山县", "绿水县"), encoding="utf-8")
    bad = _bad_input("binary", tmp_path)
    before = _snapshot(tiny_store)
    r = cli("ingest", str(good), str(bad), store=tiny_store)
    _one_line_error(r, bad.name)
    assert _snapshot(tiny_store) == before


def test_ingest_folder_of_only_bad_files_warns_and_writes_nothing(cli, tiny_store, tmp_path):
    for kind in ("empty", "binary", "pdf"):
        _bad_input(kind, tmp_path / "folder")
    before = _snapshot(tiny_store)
    r = cli("ingest", str(tmp_path / "folder"), store=tiny_store)
    _no_traceback(r)
    unwrapped = "".join(r.stderr.splitlines())
    for name in ("empty_report.txt", "binary_report.txt", "report.pdf"):
        assert str(tmp_path / "folder" / name) in unwrapped, r.stderr
    assert "added 0" in r.stdout and "failed 2" in r.stdout
    assert _snapshot(tiny_store) == before


def test_ingest_folder_of_only_bad_files_exits_nonzero(cli, tiny_store, tmp_path):
    for kind in ("empty", "binary"):
        _bad_input(kind, tmp_path / "folder")
    r = cli("ingest", str(tmp_path / "folder"), store=tiny_store)
    _no_traceback(r)
    assert r.returncode != 0


@pytest.mark.parametrize("args,name", [
    (("remove", "no_such_report"), "no_such_report"),
    (("search", "执法", "--mode", "fuzzy"), "fuzzy"),
    (("search", "执法", "--doc", "no_such_report"), "no_such_report"),
])
def test_other_bad_arguments_one_line_error(cli, tiny_store, args, name):
    before = _snapshot(tiny_store)
    r = cli(*args, store=tiny_store)
    _one_line_error(r, name)
    assert _snapshot(tiny_store) == before


def test_store_intact_and_searchable_after_bad_input(cli, tiny_store, tmp_path):
    assert cli("ingest", str(_bad_input("garbled", tmp_path)), store=tiny_store).returncode != 0
    r = cli("search", "樱桃园道路隐患排查", "--json", store=tiny_store)
    assert r.returncode == 0, r.stderr
    _no_traceback(r)
    hits = json.loads(r.stdout)
    assert hits and {h["doc_id"] for h in hits} == {"qingshan"}
    assert any("樱桃园道路隐患排查6次" in h["text"] for h in hits)
    assert all(h["text"] == TINY[h["start"]:h["end"]] for h in hits)
    assert [d[0] for d in _snapshot(tiny_store)[0]] == ["qingshan"]


def test_gbk_and_utf8_bom_files_ingest_without_mojibake(cli, tmp_path):
    store = tmp_path / "store"
    gbk = tmp_path / "gbk_report.txt"
    gbk.write_bytes(TINY.encode("gbk"))
    bom = tmp_path / "bom_report.txt"
    bom.write_bytes(codecs.BOM_UTF8 + TINY.encode("utf-8"))
    r = cli("ingest", str(gbk), str(bom), "--json", store=store)
    assert r.returncode == 0, r.stderr
    _no_traceback(r)
    assert sorted(json.loads(r.stdout)["added"]) == ["bom_report", "gbk_report"]
    db = sqlite3.connect(store / "govqa.db")
    stored = dict(((d, (t, e)) for d, t, e in db.execute("SELECT doc_id, text, encoding FROM docs")))
    db.close()
    assert stored == {"gbk_report": (TINY, "gb18030"), "bom_report": (TINY, "utf-8-sig")}

    db = sqlite3.connect(store / "govqa.db")
    metas = [json.loads(m) for (m,) in db.execute("SELECT meta FROM docs")]
    db.close()
    assert len(metas) == 2
    for m in metas:
        assert m["agency"] == "青山县交通运输局" and m["year"] == 2023
        assert m["title"] == "青山县交通运输局2023年度法治政府建设工作报告"

    r = cli("search", "罚没收入12.5万元", "--json", "-k", "4", "--doc", "gbk_report", "--doc", "bom_report", store=store)
    assert r.returncode == 0, r.stderr
    hits = json.loads(r.stdout)
    assert {h["doc_id"] for h in hits} == {"gbk_report", "bom_report"}
    for h in hits:
        assert h["text"] == TINY[h["start"]:h["end"]]  # offsets into the decoded text, BOM not counted
        assert "\ufffd" not in h["text"] and "\ufeff" not in h["text"]
    assert sum("罚没收入12.5万元" in h["text"] for h in hits) >= 2


def test_ingest_folder_with_bad_files_warns_and_continues(cli, tmp_path):
    store = tmp_path / "store"
    folder = tmp_path / "incoming"
    for kind in ("empty", "binary", "pdf"):
        _bad_input(kind, folder)
    (folder / "qingshan.txt").write_text(TINY, encoding="utf-8")
    r = cli("ingest", str(folder), "--json", store=store)
    assert r.returncode == 0, r.stderr
    _no_traceback(r)
    out = json.loads(r.stdout)
    assert out["added"] == ["qingshan"]
    assert len(out["errors"]) == 2 and len(out["warnings"]) == 1
    unwrapped = "".join(r.stderr.splitlines())
    assert unwrapped.count("warning:") == 3
    for name in ("empty_report.txt", "binary_report.txt", "report.pdf"):
        assert str(folder / name) in unwrapped, r.stderr


def test_ingest_warnings_are_one_line_each(cli, tiny_store, tmp_path):
    folder = tmp_path / "a_folder_with_a_reasonably_long_name_as_real_archives_have" / "2023年度报告"
    _bad_input("binary", folder)
    _bad_input("pdf", folder)
    r = cli("ingest", str(folder), store=tiny_store)
    _no_traceback(r)
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 2, lines
    assert all(ln.startswith("warning:") for ln in lines)
    assert any(str(folder / "binary_report.txt") in ln for ln in lines)
    assert any(str(folder / "report.pdf") in ln for ln in lines)


# ---------------------------------------------------------------------------------------------
# JSON shapes over the sample store
# ---------------------------------------------------------------------------------------------

def test_search_json_shape(cli, sample_store_path, sample_texts):
    r = cli("search", "负责人出庭应诉率100%", "-k", "5", "--json", store=sample_store_path)
    assert r.returncode == 0, r.stderr
    _no_traceback(r)
    hits = json.loads(r.stdout)
    assert isinstance(hits, list) and len(hits) == 5
    for h in hits:
        assert set(h) == HIT_KEYS
        assert isinstance(h["start"], int) and isinstance(h["end"], int) and isinstance(h["score"], float)
        assert isinstance(h["year"], int) and h["agency"] and h["source"].endswith(f"{h['doc_id']}.txt")
        assert h["text"] == sample_texts[h["doc_id"]][h["start"]:h["end"]]
    assert {S000, S001} <= {h["doc_id"] for h in hits}


def test_search_json_traditional_report_quoted_in_its_script(cli, sample_store_path, sample_texts):
    r = cli("search", "罚没收入327万元", "--json", "--agency", "湘乡", store=sample_store_path)
    hits = json.loads(r.stdout)
    assert hits and {h["doc_id"] for h in hits} == {S004}
    assert any("罰沒收入327萬元" in h["text"] for h in hits)
    assert all(h["text"] == sample_texts[S004][h["start"]:h["end"]] for h in hits)


def test_docs_json_shape(cli, sample_store_path, sample_store):
    r = cli("docs", "--json", store=sample_store_path)
    assert r.returncode == 0, r.stderr
    _no_traceback(r)
    docs = json.loads(r.stdout)
    assert [d["doc_id"] for d in docs] == ALL
    for d in docs:
        assert DOC_KEYS <= set(d)
        assert d["chunks"] == len(sample_store.doc_chunks(d["doc_id"])) > 0
        assert isinstance(d["year"], int)
    by_id = {d["doc_id"]: d for d in docs}
    assert (by_id[S000]["agency"], by_id[S000]["region"], by_id[S000]["year"], by_id[S000]["report_type"],
            by_id[S000]["published"]) == ("柯桥区交通运输局", "柯桥区", 2023, "法治政府建设年度报告", "2024-01-30")
    assert (by_id[S004]["agency"], by_id[S004]["year"], by_id[S004]["report_type"], by_id[S004]["published"]) == \
           ("湘乡市交通运输局", 2024, "行政执法工作报告", "2025-01-15")
    assert by_id[S001]["published"] == "2021-02-23"


# ---------------------------------------------------------------------------------------------
# the default path never imports torch
# ---------------------------------------------------------------------------------------------

def test_default_path_never_imports_torch(tmp_path):
    report = tmp_path / "qingshan.txt"
    report.write_text(TINY, encoding="utf-8")
    store = tmp_path / "store"
    script = textwrap.dedent(f"""
        import contextlib, io, json, sys
        sys.path.insert(0, {str(ROOT)!r})
        from rag.config import load_settings
        from rag.index import Store
        from rag.retrieve import search
        s = Store(load_settings(store={str(store)!r}))
        r = s.ingest([{str(report)!r}])
        hits = search(s, "罚没收入12.5万元", k=3)
        s.close()
        import cli
        buf = io.StringIO()
        for argv in (["search", "樱桃园", "--json"], ["docs", "--json"]):
            sys.argv = ["cli.py", *argv, "--store", {str(store)!r}]
            with contextlib.redirect_stdout(buf):
                try:
                    cli.main()
                except SystemExit as e:
                    assert not e.code, e.code
        heavy = sorted(m for m in sys.modules if m.split(".")[0] in ("torch", "sentence_transformers", "transformers"))
        print(json.dumps({{"added": r.added, "hits": len(hits), "heavy": heavy, "cli_out": len(buf.getvalue())}}))
    """)
    env = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "PYTHONWARNINGS": "ignore"}
    res = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, cwd=str(tmp_path),
                         env=env, timeout=300)
    assert res.returncode == 0, res.stderr[-3000:]
    out = json.loads(res.stdout.strip().splitlines()[-1])
    assert out["added"] == ["qingshan"] and out["hits"] > 0 and out["cli_out"] > 0
    assert out["heavy"] == [], out["heavy"]
