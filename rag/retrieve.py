"""Hybrid retrieval: dense (Chroma) + lexical (bm25s) fused by reciprocal rank, with report filters."""
from __future__ import annotations

import re
from dataclasses import asdict, dataclass

import numpy as np

from . import GovqaError
from .clean import fold
from .index import DocRecord, Store
from .textproc import tokenize

RRF_K = 60


@dataclass
class Hit:
    chunk_id: str
    doc_id: str
    source: str
    agency: str
    year: int | None
    section: str
    text: str  # original[start:end], in the report's own script
    start: int
    end: int
    score: float
    vstart: int = 0
    vend: int = 0

    def as_json(self) -> dict:
        d = asdict(self)
        for k in ("chunk_id", "vstart", "vend"):
            d.pop(k)
        d["score"] = round(self.score, 6)
        return d


def short_names(doc: DocRecord) -> list[str]:
    """Names a question may use for a report's agency: '柯桥区交通运输局', '柯桥区', '柯桥'."""
    names = []
    region = doc.meta.get("region") or ""
    agency = doc.meta.get("agency") or ""
    for n in (agency, region, region[:-1] if len(region) >= 3 else ""):
        if n and n not in names:
            names.append(n)
    return names


def named_docs(query: str, docs: list[DocRecord]) -> list[DocRecord]:
    """Reports whose agency or place the question names (folded, so either script works)."""
    q = fold(query)
    return [d for d in docs if any(n in q for n in short_names(d))]


def years_in(query: str) -> list[int]:
    return [int(y) for y in re.findall(r"((?:19|20)\d{2})\s*年?", fold(query))]


def resolve_filters(store: Store, agency: str | None = None, year: int | None = None,
                    doc_ids: list[str] | None = None) -> list[str] | None:
    """The doc ids allowed by explicit filters, or None for no restriction."""
    if not (agency or year or doc_ids):
        return None
    docs = store.docs()
    if doc_ids:
        unknown = set(doc_ids) - {d.doc_id for d in docs}
        if unknown:
            raise GovqaError(f"no report '{sorted(unknown)[0]}' in the store (see `govqa docs`)")
        docs = [d for d in docs if d.doc_id in doc_ids]
    if agency:
        a = fold(agency)
        docs = [d for d in docs if any(a in n or n in a for n in short_names(d) if len(n) >= 2)]
    if year:
        docs = [d for d in docs if d.year == int(year)]
    return [d.doc_id for d in docs]


def search(store: Store, query: str, k: int = 5, agency: str | None = None, year: int | None = None,
           doc_ids: list[str] | None = None, mode: str = "hybrid", auto_scope: bool = True) -> list[Hit]:
    if not query or not query.strip():
        raise GovqaError("empty question")
    if k < 1:
        raise GovqaError("-k must be at least 1")
    allowed = resolve_filters(store, agency, year, doc_ids)
    if allowed is not None and not allowed:
        return []
    docs = store.docs()
    if allowed is None and auto_scope:
        named = named_docs(query, docs)
        if len(named) >= 2:
            # Several reports named: search each so none crowds out the others, then interleave.
            per = max(1, -(-k // len(named)))
            groups = [_search_ids(store, query, per, [d.doc_id], mode) for d in named]
            merged: list[Hit] = []
            for i in range(per):
                merged.extend(g[i] for g in groups if i < len(g))
            return merged[: max(k, len(named))]
        if len(named) == 1:
            allowed = [named[0].doc_id]
    return _search_ids(store, query, k, allowed, mode)


def _search_ids(store: Store, query: str, k: int, allowed: list[str] | None, mode: str) -> list[Hit]:
    q = fold(query)
    pool = max(k * 4, 30)
    ranked: dict[str, float] = {}
    if mode in ("hybrid", "dense"):
        for rank, cid in enumerate(_dense(store, q, pool, allowed)):
            ranked[cid] = ranked.get(cid, 0.0) + 1.0 / (RRF_K + rank + 1)
    if mode in ("hybrid", "bm25"):
        for rank, cid in enumerate(_lexical(store, q, pool, allowed)):
            ranked[cid] = ranked.get(cid, 0.0) + 1.0 / (RRF_K + rank + 1)
    top = sorted(ranked.items(), key=lambda x: -x[1])[:k]
    rows = store.chunk_rows([cid for cid, _ in top])
    docs = {d.doc_id: d for d in store.docs()}
    hits = []
    for cid, score in top:
        r = rows.get(cid)
        if r is None:
            continue
        d = docs[r["doc_id"]]
        text = store.original(d.doc_id)[r["start"]:r["end"]]
        hits.append(Hit(cid, d.doc_id, d.source, d.agency, d.year, r["section"], text, r["start"], r["end"],
                        score, r["vstart"], r["vend"]))
    return hits


def _dense(store: Store, q: str, n: int, allowed: list[str] | None) -> list[str]:
    col = store.collection
    total = col.count()
    if total == 0:
        return []
    where = None
    if allowed is not None:
        where = {"doc_id": allowed[0]} if len(allowed) == 1 else {"doc_id": {"$in": allowed}}
    vec = store.query_vector(q)
    res = col.query(query_embeddings=[vec.tolist()], n_results=min(n, total), where=where, include=[])
    return res["ids"][0]


def _doc_column(store: Store, ids: list[str]) -> np.ndarray:
    """The doc id of every BM25 row, computed once per index version (filters are then one vectorised
    compare). Keyed by the list object itself, which Store.bm25 replaces whenever the index changes."""
    cached = getattr(store, "_doc_column", None)
    if cached is None or cached[0] is not ids:
        cached = (ids, np.array([c.rsplit(":", 1)[0] for c in ids], dtype=object))
        store._doc_column = cached
    return cached[1]


def _lexical(store: Store, q: str, n: int, allowed: list[str] | None) -> list[str]:
    retriever, ids = store.bm25()
    if not ids:
        return []
    tokens = tokenize(q)
    if not tokens:
        return []
    mask = None
    if allowed is not None:
        mask = np.isin(_doc_column(store, ids), np.array(allowed, dtype=object)).astype(np.float32)
    res, scores = retriever.retrieve([tokens], k=min(n, len(ids)), show_progress=False, weight_mask=mask)
    return [ids[i] for i, s in zip(res[0], scores[0]) if s > 0]
