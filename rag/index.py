"""The store: SQLite (documents, chunks, manifest), Chroma (dense vectors) and bm25s (lexical), kept in step.

Layout under the store folder:
  govqa.db   format version, embedder, documents (original text + metadata + hash), chunks
  chroma/    Chroma's persistent directory, vectors from our own embedder only
  bm25/      bm25s index over jieba tokens, with the chunk ids it was built from
"""
from __future__ import annotations

import json
import shutil
import sqlite3
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np

from . import GovqaError
from .chunking import Chunk, chunk_view
from .clean import View, clean
from .config import DEFAULT_EMBEDDER, Settings
from .documents import Document, expand_paths, load_document, sample_paths
from .metadata import extract_metadata
from .textproc import tokenize

FORMAT_VERSION = 1
# Bumped whenever cleaning or chunking changes: stored chunk offsets into views are only valid for the
# pipeline that made them, so an older store is rebuilt from its stored originals, never misread.
PIPELINE_VERSION = "2"
COLLECTION = "chunks"
EMBED_BATCH = 32

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT);
CREATE TABLE IF NOT EXISTS docs (
    doc_id TEXT PRIMARY KEY, source TEXT, sha256 TEXT, encoding TEXT, text TEXT,
    meta TEXT, n_chunks INTEGER, ingested_at REAL);
CREATE TABLE IF NOT EXISTS chunks (
    chunk_id TEXT PRIMARY KEY, doc_id TEXT, ord INTEGER, section TEXT,
    vstart INTEGER, vend INTEGER, start INTEGER, "end" INTEGER, text TEXT, tokens TEXT);
CREATE INDEX IF NOT EXISTS chunks_doc ON chunks(doc_id);
"""


@dataclass
class DocRecord:
    doc_id: str
    source: str
    sha256: str
    meta: dict
    n_chunks: int

    @property
    def agency(self) -> str:
        return self.meta.get("agency", "")

    @property
    def year(self) -> int | None:
        return self.meta.get("year")

    def as_json(self) -> dict:
        m = self.meta
        return {"doc_id": self.doc_id, "source": self.source, "title": m.get("title", ""), "agency": m.get("agency", ""),
                "region": m.get("region", ""), "level": m.get("level", ""), "year": m.get("year"),
                "report_type": m.get("report_type", ""), "doc_number": m.get("doc_number", ""),
                "published": m.get("published", ""), "sha256": self.sha256, "chunks": self.n_chunks}


@dataclass
class IngestReport:
    added: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    chunks: int = 0
    seconds: float = 0.0
    reindexed: bool = False


@dataclass
class Prepared:
    doc: Document
    meta: dict
    chunks: list[Chunk]


def prepare(doc: Document, chunk_tokens: int = 320, min_tokens: int = 40) -> Prepared:
    """Everything an ingest needs that does not touch the store: clean, metadata, chunks."""
    view = clean(doc.text)
    if not view.text.strip():
        raise GovqaError(f"{doc.source}: no report text left after removing page boilerplate")
    meta = extract_metadata(doc.text)
    chunks = chunk_view(doc.doc_id, view, chunk_tokens, min_tokens)
    for c in chunks:
        # ids are per file version, so a replacement can add its vectors before the old ones go
        c.chunk_id = f"{c.chunk_id}@{doc.sha256[:10]}"
    return Prepared(doc, meta.as_dict(), chunks)


def embed_text(section: str, text: str) -> str:
    # The heading path tells the embedder what a terse section is about ("(三)提高行政应诉工作水平").
    return f"{section}\n{text}" if section else text


class ChromaEmbeddingFunction:
    """Our embedder in Chroma's shape, so Chroma never falls back to its downloading default."""

    def __init__(self, spec: str, embedder=None) -> None:
        self._spec = spec
        self._embedder = embedder

    @property
    def _e(self):
        if self._embedder is None:  # rebuilt by Chroma from its config: load only if actually used
            from .embeddings import get_embedder

            self._embedder = get_embedder(self._spec)
        return self._embedder

    def __call__(self, input):  # noqa: A002 - Chroma's protocol names it so
        return [v for v in self._e.embed_passages(list(input))]

    def embed_query(self, input):  # noqa: A002
        return [self._e.embed_query(t) for t in input]

    @staticmethod
    def name() -> str:
        return "govqa"

    def get_config(self) -> dict:
        return {"embedder_spec": self._spec}

    @staticmethod
    def build_from_config(config):
        return ChromaEmbeddingFunction(config.get("embedder_spec") or DEFAULT_EMBEDDER)

    def is_legacy(self) -> bool:
        return False

    def default_space(self) -> str:
        return "cosine"

    def supported_spaces(self) -> list[str]:
        return ["cosine"]


class Store:
    def __init__(self, settings: Settings):
        self.settings = settings
        self.path = Path(settings.store)
        if self.path.exists() and not self.path.is_dir():
            raise GovqaError(f"store path {self.path} is a file, not a folder")
        self.path.mkdir(parents=True, exist_ok=True)
        try:
            self.db = sqlite3.connect(self.path / "govqa.db")
            self.db.executescript(_SCHEMA)
        except sqlite3.DatabaseError as e:
            raise GovqaError(f"store {self.path} is damaged or not a govqa store ({e})") from None
        version = self._meta("format_version")
        if version is None:
            self._set_meta("format_version", str(FORMAT_VERSION))
            self.db.commit()
        elif int(version) != FORMAT_VERSION:
            raise GovqaError(f"store {self.path} has format {version}, this govqa reads {FORMAT_VERSION}: "
                             f"re-ingest into a new store (--store) or delete {self.path}")
        self._collection = None
        self._bm25 = None
        self._embedder = None
        self._df_cache: dict = {}
        self._docs_cache = None
        self._query_vectors: dict[str, object] = {}
        if self.is_empty():
            self._set_meta("pipeline_version", PIPELINE_VERSION)
            self.db.commit()
        self.outdated = self._meta("pipeline_version") != PIPELINE_VERSION

    # ---- small helpers -------------------------------------------------------------------------
    def _meta(self, key: str) -> str | None:
        row = self.db.execute("SELECT value FROM meta WHERE key=?", (key,)).fetchone()
        return row[0] if row else None

    def _set_meta(self, key: str, value: str) -> None:
        self.db.execute("INSERT OR REPLACE INTO meta VALUES (?, ?)", (key, value))

    @property
    def embedder_spec(self) -> str:
        return self.settings.embedder or self._meta("embedder_spec") or DEFAULT_EMBEDDER

    @property
    def embedder(self):
        if self._embedder is None:
            from .embeddings import get_embedder

            self._embedder = get_embedder(self.embedder_spec)
        return self._embedder

    @property
    def collection(self):
        if self._collection is None:
            import chromadb
            from chromadb.config import Settings as ChromaSettings

            _register_with_chroma()

            client = chromadb.PersistentClient(path=str(self.path / "chroma"),
                                               settings=ChromaSettings(anonymized_telemetry=False))
            self._collection = client.get_or_create_collection(
                COLLECTION, embedding_function=ChromaEmbeddingFunction(self.embedder_spec, self._embedder),
                metadata={"hnsw:space": "cosine"})
            self._client = client
        return self._collection

    # ---- reading -------------------------------------------------------------------------------
    def is_empty(self) -> bool:
        return self.db.execute("SELECT COUNT(*) FROM docs").fetchone()[0] == 0

    def docs(self) -> list[DocRecord]:
        # read on every search: cached until the store changes (the generation moves on every write)
        gen = self._meta("generation")
        if self._docs_cache is None or self._docs_cache[0] != gen:
            rows = self.db.execute("SELECT doc_id, source, sha256, meta, n_chunks FROM docs ORDER BY doc_id").fetchall()
            self._docs_cache = (gen, [DocRecord(r[0], r[1], r[2], json.loads(r[3]), r[4]) for r in rows])
        return list(self._docs_cache[1])

    def doc(self, doc_id: str) -> DocRecord | None:
        r = self.db.execute("SELECT doc_id, source, sha256, meta, n_chunks FROM docs WHERE doc_id=?", (doc_id,)).fetchone()
        return DocRecord(r[0], r[1], r[2], json.loads(r[3]), r[4]) if r else None

    def original(self, doc_id: str) -> str:
        row = self.db.execute("SELECT text FROM docs WHERE doc_id=?", (doc_id,)).fetchone()
        if not row:
            raise GovqaError(f"no report '{doc_id}' in the store")
        return row[0]

    def view(self, doc_id: str) -> View:
        if self.outdated:
            raise GovqaError(f"store {self.path} was built by an older govqa: rebuild it with `govqa ingest --rebuild`")
        return _cached_view(self.original(doc_id))

    def rebuild(self, progress=None) -> int:
        """Re-clean, re-chunk and re-embed every report from its stored original text."""
        rows = self.db.execute("SELECT doc_id, source, sha256, encoding, text FROM docs").fetchall()
        todo = [prepare(Document(r[0], r[1], r[4], r[3], r[2]), self.settings.chunk_tokens,
                        self.settings.min_chunk_tokens) for r in rows]
        known = {r.doc_id: r for r in self.docs()}
        if todo:
            self._write(todo, known, progress)
        self._set_meta("pipeline_version", PIPELINE_VERSION)
        self.db.commit()
        self.outdated = False
        from .facts import refresh_facts

        refresh_facts(self)
        return len(todo)

    def query_vector(self, text: str):
        """The query embedding, computed once per text (a question naming several reports searches each)."""
        v = self._query_vectors.get(text)
        if v is None:
            if len(self._query_vectors) > 64:
                self._query_vectors.clear()
            v = self._query_vectors[text] = self.embedder.embed_query(text)
        return v

    def chunk_rows(self, chunk_ids: list[str]) -> dict[str, dict]:
        if not chunk_ids:
            return {}
        out = {}
        for i in range(0, len(chunk_ids), 500):
            part = chunk_ids[i:i + 500]
            q = f'SELECT chunk_id, doc_id, ord, section, vstart, vend, start, "end", text FROM chunks WHERE chunk_id IN ({",".join("?" * len(part))})'
            for r in self.db.execute(q, part):
                out[r[0]] = dict(chunk_id=r[0], doc_id=r[1], ord=r[2], section=r[3], vstart=r[4], vend=r[5],
                                 start=r[6], end=r[7], text=r[8])
        return out

    def section_at(self, doc_id: str, start: int) -> str:
        row = self.db.execute('SELECT section FROM chunks WHERE doc_id=? AND start<=? AND "end">? ORDER BY ord LIMIT 1',
                              (doc_id, start, start)).fetchone()
        return row[0] if row else ""

    def term_weights(self, terms: list[str]) -> dict[str, float]:
        """IDF-style weights over chunks: a term found everywhere (案件, 办理) says little about a sentence."""
        import math

        n = self.db.execute("SELECT COUNT(*) FROM chunks").fetchone()[0]
        out = {}
        for t in terms:
            key = (self._meta("generation"), t)
            if key not in self._df_cache:
                self._df_cache[key] = self.db.execute("SELECT COUNT(*) FROM chunks WHERE instr(text, ?) > 0", (t,)).fetchone()[0]
            df = self._df_cache[key]
            out[t] = min(len(t), 4) * max(0.2, math.log((n + 1) / (df + 1)))
        return out

    def doc_chunks(self, doc_id: str) -> list[dict]:
        ids = [r[0] for r in self.db.execute("SELECT chunk_id FROM chunks WHERE doc_id=? ORDER BY ord", (doc_id,))]
        rows = self.chunk_rows(ids)
        return [rows[i] for i in ids]

    # ---- writing -------------------------------------------------------------------------------
    def ingest(self, paths: list[Path], progress: Callable[[int, int], None] | None = None) -> IngestReport:
        """Add or refresh reports. Files named explicitly must be valid (else nothing is written);
        bad files found inside folders are skipped with a warning."""
        t0 = time.perf_counter()
        report = IngestReport()
        files, report.warnings = expand_paths(paths)
        explicit = {Path(p).resolve() for p in paths if Path(p).is_file()}
        known = {r.doc_id: r for r in self.docs()}
        reindexed = self._ensure_embedder(progress)
        if self.outdated:
            self.rebuild(progress)
            reindexed = True
        report.reindexed = reindexed
        todo: list[Prepared] = []
        seen: dict[str, str] = {}
        for f in files:
            try:
                doc = load_document(f)
                if doc.doc_id in seen and seen[doc.doc_id] != doc.sha256:
                    raise GovqaError(f"{f}: another file in this ingest has the same name ({doc.doc_id}); "
                                     "report ids come from file names and must be unique")
                seen[doc.doc_id] = doc.sha256
                old = known.get(doc.doc_id)
                if old and old.sha256 == doc.sha256:
                    if old.source != doc.source:
                        self.db.execute("UPDATE docs SET source=? WHERE doc_id=?", (doc.source, doc.doc_id))
                    report.skipped.append(doc.doc_id)
                    continue
                todo.append(prepare(doc, self.settings.chunk_tokens, self.settings.min_chunk_tokens))
            except GovqaError as e:
                if f.resolve() in explicit:
                    self.db.rollback()
                    raise
                report.errors.append(str(e))
        self.db.commit()
        if todo:
            self._write(todo, known, progress)
            from .facts import refresh_facts

            refresh_facts(self, [p.doc.doc_id for p in todo])
            for p in todo:
                (report.updated if p.doc.doc_id in known else report.added).append(p.doc.doc_id)
                report.chunks += len(p.chunks)
        report.seconds = time.perf_counter() - t0
        return report

    def _write(self, todo: list[Prepared], known: dict, progress) -> None:
        new_chunks = [(p, c) for p in todo for c in p.chunks]
        texts = [embed_text(c.section, c.text) for _, c in new_chunks]
        vectors = self._embed(texts, progress)
        old_ids = [r[0] for p in todo if p.doc.doc_id in known
                   for r in self.db.execute("SELECT chunk_id FROM chunks WHERE doc_id=?", (p.doc.doc_id,))]
        col = self.collection
        added: list[str] = []
        try:
            # new vectors first (fresh ids), then the SQLite swap in one transaction, then the old vectors go:
            # an interruption anywhere leaves the previous version whole
            for i in range(0, len(new_chunks), 1000):
                part = new_chunks[i:i + 1000]
                ids = [c.chunk_id for _, c in part]
                col.upsert(ids=ids, embeddings=vectors[i:i + 1000],
                           metadatas=[_chroma_meta(p.meta, c) for p, c in part])
                added.extend(ids)
            with self.db:
                for p in todo:
                    d = p.doc
                    self.db.execute("DELETE FROM chunks WHERE doc_id=?", (d.doc_id,))
                    self.db.execute("INSERT OR REPLACE INTO docs VALUES (?,?,?,?,?,?,?,?)",
                                    (d.doc_id, d.source, d.sha256, d.encoding, d.text,
                                     json.dumps(p.meta, ensure_ascii=False), len(p.chunks), time.time()))
                    self.db.executemany(
                        'INSERT INTO chunks VALUES (?,?,?,?,?,?,?,?,?,?)',
                        [(c.chunk_id, c.doc_id, c.ord, c.section, c.vstart, c.vend, c.start, c.end, c.text,
                          " ".join(tokenize(embed_text(c.section, c.text)))) for c in p.chunks])
                self._bump_generation()
        except BaseException as e:  # Ctrl-C included: the store must not be left half-written
            if added:
                try:
                    col.delete(ids=added)
                except Exception:
                    pass
            if isinstance(e, Exception) and not isinstance(e, GovqaError):
                raise GovqaError(f"indexing failed, store left as it was: {e}") from None
            raise
        stale = [i for i in old_ids if i not in set(added)]
        if stale:
            col.delete(ids=stale)  # orphans, if this fails, are never returned: hits resolve through SQLite
        self._bm25 = None

    def _embed(self, texts: list[str], progress) -> np.ndarray:
        out = []
        for i in range(0, len(texts), EMBED_BATCH):
            out.append(self.embedder.embed_passages(texts[i:i + EMBED_BATCH]))
            if progress:
                progress(min(i + EMBED_BATCH, len(texts)), len(texts))
        return np.vstack(out) if out else np.zeros((0, 1), dtype=np.float32)

    def _bump_generation(self) -> None:
        gen = int(self._meta("generation") or 0) + 1
        self._set_meta("generation", str(gen))

    def _ensure_embedder(self, progress) -> bool:
        """A store is built by one embedder; asking for another re-embeds every chunk instead of mixing."""
        if self._meta("embedder_spec") == self.embedder_spec and self._meta("embedder"):
            return False  # decided without loading the model: an unchanged re-ingest stays instant
        recorded = self._meta("embedder")
        want = self.embedder.name
        if recorded == want:
            self._set_meta("embedder_spec", self.embedder_spec)
            self.db.commit()
            return False
        if recorded is None or self.is_empty():
            self._set_meta("embedder", want)
            self._set_meta("embedder_spec", self.embedder_spec)
            self.db.commit()
            return False
        rows = self.db.execute("SELECT c.chunk_id, c.section, c.text, d.meta FROM chunks c JOIN docs d USING(doc_id)").fetchall()
        vectors = self._embed([embed_text(r[1], r[2]) for r in rows], progress)
        self._collection = None
        shutil.rmtree(self.path / "chroma", ignore_errors=True)
        col = self.collection
        chunk_rows = self.chunk_rows([r[0] for r in rows])
        for i in range(0, len(rows), 1000):
            part = rows[i:i + 1000]
            col.upsert(ids=[r[0] for r in part], embeddings=vectors[i:i + 1000],
                       metadatas=[_chroma_meta(json.loads(r[3]), _row_chunk(chunk_rows[r[0]])) for r in part])
        self._set_meta("embedder", want)
        self._set_meta("embedder_spec", self.embedder_spec)
        self.db.commit()
        return True

    def remove(self, doc_ids: list[str]) -> list[str]:
        missing = [d for d in doc_ids if self.doc(d) is None]
        if missing:
            raise GovqaError(f"no report '{missing[0]}' in the store (see `govqa docs`)")
        ids = [r[0] for d in doc_ids for r in self.db.execute("SELECT chunk_id FROM chunks WHERE doc_id=?", (d,))]
        with self.db:
            for d in doc_ids:
                self.db.execute("DELETE FROM chunks WHERE doc_id=?", (d,))
                self.db.execute("DELETE FROM docs WHERE doc_id=?", (d,))
            if ids:
                self.collection.delete(ids=ids)
            self._bump_generation()
        self._bm25 = None
        from .facts import refresh_facts

        refresh_facts(self, doc_ids)
        return doc_ids

    # ---- lexical index ---------------------------------------------------------------------------
    def bm25(self):
        """(bm25s retriever, chunk ids in its order), rebuilt only when the store has changed."""
        if self._bm25 is not None:
            return self._bm25
        import bm25s

        gen = self._meta("generation") or "0"
        d = self.path / "bm25"
        stamp = d / "generation.json"
        if stamp.exists():
            try:
                saved = json.loads(stamp.read_text())
                if saved.get("generation") == gen:
                    self._bm25 = (bm25s.BM25.load(str(d / "index")), saved["ids"])
                    return self._bm25
            except (OSError, ValueError, KeyError):
                pass
        rows = self.db.execute("SELECT chunk_id, tokens FROM chunks ORDER BY doc_id, ord").fetchall()
        ids = [r[0] for r in rows]
        retriever = bm25s.BM25()
        if rows:
            retriever.index([r[1].split() or [""] for r in rows], show_progress=False)
            tmp = d.with_name("bm25.tmp")
            shutil.rmtree(tmp, ignore_errors=True)
            retriever.save(str(tmp / "index"), show_progress=False)
            (tmp / "generation.json").write_text(json.dumps({"generation": gen, "ids": ids}))
            shutil.rmtree(d, ignore_errors=True)
            tmp.rename(d)
        self._bm25 = (retriever, ids)
        return self._bm25

    def close(self) -> None:
        self.db.close()


_REGISTERED = False


def _register_with_chroma() -> None:
    """Chroma rebuilds a collection's embedding function by name when it opens one: tell it ours."""
    global _REGISTERED
    if not _REGISTERED:
        from chromadb.utils.embedding_functions import register_embedding_function

        try:
            register_embedding_function(ChromaEmbeddingFunction)
        except ValueError:
            pass  # already registered in this process
        _REGISTERED = True


def _chroma_meta(meta: dict, c: Chunk) -> dict:
    return {"doc_id": c.doc_id, "agency": meta.get("agency") or "", "region": meta.get("region") or "",
            "year": int(meta.get("year") or 0), "section": c.section}


def _row_chunk(r: dict) -> Chunk:
    return Chunk(r["chunk_id"], r["doc_id"], r["ord"], r["section"], r["vstart"], r["vend"], r["start"], r["end"], r["text"])


_VIEW_CACHE: dict[int, View] = {}


def _cached_view(text: str) -> View:
    key = hash(text)
    v = _VIEW_CACHE.get(key)
    if v is None:
        if len(_VIEW_CACHE) > 256:
            _VIEW_CACHE.clear()
        v = _VIEW_CACHE[key] = clean(text)
    return v


def open_store(settings: Settings, ensure_samples: bool = True, progress_factory=None) -> Store:
    """Open the store; an empty one gets the bundled samples first, so every command works out of the box."""
    store = Store(settings)
    if ensure_samples and store.is_empty():
        progress = progress_factory() if progress_factory else None
        store.ingest(sample_paths(), progress=progress)
    return store
