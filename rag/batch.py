"""Batch extraction jobs: resumable (cached by report hash + schema hash + model), concurrent LLM calls,
one report's failure recorded while the batch goes on."""
from __future__ import annotations

import time
from concurrent.futures import FIRST_COMPLETED, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from typing import Callable

from . import GovqaError
from .config import Settings
from .extract import Extraction, FieldValue, llm_context, llm_messages, rule_extract, verify_llm_fields
from .index import Store
from .schema import Schema

_CACHE = """
CREATE TABLE IF NOT EXISTS extractions (
    doc_sha TEXT, schema_hash TEXT, model TEXT, doc_id TEXT, status TEXT, result TEXT, error TEXT,
    tokens INTEGER, updated_at REAL, PRIMARY KEY (doc_sha, schema_hash, model));
"""


@dataclass
class BatchSummary:
    done: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)  # already in the cache
    failed: dict[str, str] = field(default_factory=dict)
    tokens: int = 0
    whole_report_tokens: int = 0  # what stuffing whole reports would have cost
    dropped: dict[str, list[str]] = field(default_factory=dict)
    results: list[Extraction] = field(default_factory=list)
    seconds: float = 0.0


def extract_rules(store: Store, doc_id: str, schema: Schema) -> Extraction:
    d = store.doc(doc_id)
    return rule_extract(doc_id, d.source, store.original(doc_id), store.view(doc_id), d.meta,
                        store.doc_chunks(doc_id), schema)


def run_batch(store: Store, doc_ids: list[str], schema: Schema, settings: Settings, engine: str = "rules",
              model: str | None = None, workers: int = 4, progress: Callable[[int, int], None] | None = None,
              fail_on: Callable[[str], None] | None = None) -> BatchSummary:
    """Extract every report; what is cached is skipped, what fails is recorded and retried next run.

    `fail_on` is a test hook called before each report (it may raise to simulate a failure)."""
    from .llm import LLM, count_tokens

    t0 = time.perf_counter()
    store.db.executescript(_CACHE)
    model_key = "rules" if engine == "rules" else f"llm:{model or settings.model}"
    summary = BatchSummary()
    docs = {d.doc_id: d for d in store.docs()}
    missing = [d for d in doc_ids if d not in docs]
    if missing:
        raise GovqaError(f"no report '{missing[0]}' in the store (see `govqa docs`)")
    todo = []
    for doc_id in doc_ids:
        row = store.db.execute("SELECT result FROM extractions WHERE doc_sha=? AND schema_hash=? AND model=? AND status='ok'",
                               (docs[doc_id].sha256, schema.hash, model_key)).fetchone()
        if row:
            summary.skipped.append(doc_id)
            summary.results.append(Extraction.from_cache(row[0]))
        else:
            todo.append(doc_id)
    total, count = len(doc_ids), len(summary.skipped)
    if progress:
        progress(count, total)

    def record(doc_id: str, ex: Extraction | None, err: str = "") -> None:
        nonlocal count
        tokens = int(ex.usage.get("total_tokens", 0)) if ex else 0
        with store.db:  # each report lands on its own: an interrupted batch keeps what it finished
            store.db.execute("INSERT OR REPLACE INTO extractions VALUES (?,?,?,?,?,?,?,?,?)",
                             (docs[doc_id].sha256, schema.hash, model_key, doc_id, "ok" if ex else "failed",
                              ex.to_cache() if ex else None, err, tokens, time.time()))
        if ex:
            summary.done.append(doc_id)
            summary.results.append(ex)
            summary.tokens += tokens
            if ex.dropped:
                summary.dropped[doc_id] = ex.dropped
        else:
            summary.failed[doc_id] = err
        count += 1
        if progress:
            progress(count, total)

    if engine == "rules":
        for doc_id in todo:
            try:
                if fail_on:
                    fail_on(doc_id)
                record(doc_id, extract_rules(store, doc_id, schema))
            except Exception as e:  # one bad report must not stop the batch
                record(doc_id, None, f"{type(e).__name__}: {e}")
    else:
        llm = LLM(settings, model)
        # Retrieval and verification use the store (one SQLite connection): they stay on this thread;
        # only the model calls run concurrently.
        with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
            pending = {}
            queue = list(todo)
            while queue or pending:
                while queue and len(pending) < max(1, workers):
                    doc_id = queue.pop(0)
                    try:
                        if fail_on:
                            fail_on(doc_id)
                        sources, used = llm_context(store, doc_id, schema, settings.context_tokens)
                        messages = llm_messages(schema, sources)
                        summary.whole_report_tokens += count_tokens(messages[0]["content"]) + count_tokens(
                            llm_messages(schema, store.original(doc_id))[1]["content"])
                        pending[pool.submit(llm.chat, messages, True)] = (doc_id, used)
                    except Exception as e:
                        record(doc_id, None, f"{type(e).__name__}: {e}")
                if not pending:
                    continue
                finished, _ = wait(list(pending), return_when=FIRST_COMPLETED)
                for fut in finished:
                    doc_id, used = pending.pop(fut)
                    try:
                        comp = fut.result()
                        ex = _llm_extraction(store, doc_id, schema, comp.text, used)
                        ex.usage, ex.engine = comp.usage, model_key
                        record(doc_id, ex)
                    except Exception as e:
                        record(doc_id, None, f"{type(e).__name__}: {e}")
    summary.seconds = time.perf_counter() - t0
    order = {d: i for i, d in enumerate(doc_ids)}
    summary.results.sort(key=lambda e: order.get(e.doc_id, 0))
    return summary


def _llm_extraction(store: Store, doc_id: str, schema: Schema, text: str, used) -> Extraction:
    from .extract import metadata_field

    d = store.doc(doc_id)
    original, view = store.original(doc_id), store.view(doc_id)
    values, dropped = verify_llm_fields(text, schema, original, view, used)
    ex = Extraction(doc_id, d.source, dropped=dropped)
    for f in schema.fields:
        ex.values[f.key] = metadata_field(f, d.meta, original, view) if f.source == "metadata" \
            else values.get(f.key, FieldValue())
    return ex
