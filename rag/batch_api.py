"""OpenAI Batch API for large extraction jobs: write the request file, submit, poll, collect.

Collected results go through the same verification and the same cache as interactive batches, so a
later `govqa extract` skips what the Batch API already did.
"""
from __future__ import annotations

import json
import time
from pathlib import Path

from . import GovqaError
from .batch import _CACHE, _llm_extraction
from .config import Settings
from .extract import llm_context, llm_messages
from .index import Store
from .schema import Schema

_JOBS = """
CREATE TABLE IF NOT EXISTS batch_jobs (
    batch_id TEXT PRIMARY KEY, schema_hash TEXT, model TEXT, request_file TEXT, doc_shas TEXT,
    status TEXT, created_at REAL);
"""


def build_requests(store: Store, doc_ids: list[str], schema: Schema, settings: Settings, model: str) -> list[dict]:
    """One /v1/chat/completions request per report, custom_id = doc_id, in JSON mode."""
    lines = []
    for doc_id in doc_ids:
        sources, _ = llm_context(store, doc_id, schema, settings.context_tokens)
        lines.append({"custom_id": doc_id, "method": "POST", "url": "/v1/chat/completions",
                      "body": {"model": model, "messages": llm_messages(schema, sources), "temperature": 0, "seed": 0,
                               "max_tokens": 1024, "response_format": {"type": "json_object"}}})
    return lines


def write_requests(lines: list[dict], path: Path) -> Path:
    path.write_text("".join(json.dumps(x, ensure_ascii=False) + "\n" for x in lines), encoding="utf-8")
    return path


def _client(settings: Settings):
    from .llm import LLM

    return LLM(settings).client


def submit(store: Store, doc_ids: list[str], schema: Schema, settings: Settings, model: str | None,
           request_file: Path) -> str:
    model = model or settings.model
    lines = build_requests(store, doc_ids, schema, settings, model)
    write_requests(lines, request_file)
    client = _client(settings)
    try:
        f = client.files.create(file=request_file.open("rb"), purpose="batch")
        batch = client.batches.create(input_file_id=f.id, endpoint="/v1/chat/completions", completion_window="24h")
    except Exception as e:
        raise GovqaError(f"Batch API submission failed: {e}") from None
    shas = {d.doc_id: d.sha256 for d in store.docs() if d.doc_id in doc_ids}
    store.db.executescript(_JOBS)
    with store.db:
        store.db.execute("INSERT OR REPLACE INTO batch_jobs VALUES (?,?,?,?,?,?,?)",
                         (batch.id, schema.hash, model, str(request_file), json.dumps(shas), batch.status, time.time()))
    return batch.id


def poll(settings: Settings, batch_id: str, wait: bool = False, interval: float = 30.0) -> object:
    client = _client(settings)
    while True:
        b = client.batches.retrieve(batch_id)
        if not wait or b.status in ("completed", "failed", "expired", "cancelled"):
            return b
        time.sleep(interval)


def collect(store: Store, schema: Schema, settings: Settings, batch_id: str) -> dict:
    """Verify and cache every result of a completed batch; returns {done, failed, dropped, tokens}."""
    b = poll(settings, batch_id)
    if b.status != "completed":
        raise GovqaError(f"batch {batch_id} is {b.status}, not completed yet")
    client = _client(settings)
    text = client.files.content(b.output_file_id).text
    return ingest_output(store, schema, batch_id, text)


def ingest_output(store: Store, schema: Schema, batch_id: str, output_jsonl: str) -> dict:
    """Parse a Batch API output file (one line per request) into verified, cached extractions."""
    store.db.executescript(_JOBS + _CACHE)
    row = store.db.execute("SELECT model, doc_shas FROM batch_jobs WHERE batch_id=?", (batch_id,)).fetchone()
    if row is None:
        raise GovqaError(f"unknown batch {batch_id} (not submitted from this store)")
    model, shas = row[0], json.loads(row[1])
    out = {"done": [], "failed": {}, "dropped": {}, "tokens": 0}
    for line in output_jsonl.splitlines():
        if not line.strip():
            continue
        item = json.loads(line)
        doc_id = item.get("custom_id")
        if doc_id not in shas or store.doc(doc_id) is None or store.doc(doc_id).sha256 != shas[doc_id]:
            out["failed"][doc_id] = "report changed or removed since submission"
            continue
        resp = item.get("response") or {}
        body = resp.get("body") or {}
        if item.get("error") or resp.get("status_code", 200) != 200 or not body.get("choices"):
            err = item.get("error") or body.get("error") or f"HTTP {resp.get('status_code')}"
            out["failed"][doc_id] = str(err)
            status, result, tokens = "failed", None, 0
        else:
            content = body["choices"][0]["message"].get("content") or ""
            ex = _llm_extraction(store, doc_id, schema, content, [])
            usage = body.get("usage") or {}
            ex.usage = {k: int(usage.get(k) or 0) for k in ("prompt_tokens", "completion_tokens", "total_tokens")}
            ex.engine = f"llm:{model}"
            status, result, tokens = "ok", ex.to_cache(), ex.usage["total_tokens"]
            out["done"].append(doc_id)
            out["tokens"] += tokens
            if ex.dropped:
                out["dropped"][doc_id] = ex.dropped
        with store.db:
            store.db.execute("INSERT OR REPLACE INTO extractions VALUES (?,?,?,?,?,?,?,?,?)",
                             (shas[doc_id], schema.hash, f"llm:{model}", doc_id, status, result,
                              out["failed"].get(doc_id, ""), tokens, time.time()))
    with store.db:
        store.db.execute("UPDATE batch_jobs SET status='collected' WHERE batch_id=?", (batch_id,))
    return out
