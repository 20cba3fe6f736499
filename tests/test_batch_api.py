"""The Batch API path: request file building and output collection.

No server here implements /v1/files and /v1/batches, so submit/poll are not replayed; the output file
fed to `ingest_output` wraps a real chat-completion body recorded from the llama.cpp server
(tests/cassettes/test_run_batch_llm.yaml) in the Batch API's documented output-line shape.
"""
from __future__ import annotations

import json
import shutil
import time

import yaml

from tests.conftest import ROOT, S001

CASSETTE = ROOT / "tests" / "cassettes" / "test_run_batch_llm.yaml"


def _recorded_body() -> dict:
    data = yaml.safe_load(CASSETTE.read_text(encoding="utf-8"))
    return json.loads(data["interactions"][0]["response"]["body"]["string"])


def test_requests_are_json_mode_chat_completions(sample_store):
    from rag.batch_api import build_requests
    from rag.config import load_settings
    from rag.schema import default_schema

    lines = build_requests(sample_store, [S001], default_schema(), load_settings(store=sample_store.path), "m")
    assert [x["custom_id"] for x in lines] == [S001]
    body = lines[0]["body"]
    assert lines[0]["url"] == "/v1/chat/completions" and body["model"] == "m"
    assert body["response_format"] == {"type": "json_object"}
    assert "court_appearance_rate" in body["messages"][1]["content"]


def test_collected_output_is_verified_and_cached(sample_store_path, tmp_path):
    from rag.batch import run_batch
    from rag.batch_api import _JOBS, ingest_output
    from rag.config import load_settings
    from rag.index import Store
    from rag.schema import default_schema

    store_dir = tmp_path / "store"
    shutil.copytree(sample_store_path, store_dir)
    store = Store(load_settings(store=store_dir))
    schema = default_schema()
    store.db.executescript(_JOBS)
    sha = store.doc(S001).sha256
    with store.db:
        store.db.execute("INSERT INTO batch_jobs VALUES (?,?,?,?,?,?,?)",
                         ("batch_x", schema.hash, "smollm2", "req.jsonl", json.dumps({S001: sha}), "completed", time.time()))
    body = _recorded_body()
    output = json.dumps({"id": "r1", "custom_id": S001, "response": {"status_code": 200, "body": body}, "error": None})
    failed = json.dumps({"id": "r2", "custom_id": "nope", "response": None, "error": {"message": "x"}})
    got = ingest_output(store, schema, "batch_x", output + "\n" + failed + "\n")
    assert got["done"] == [S001] and "nope" in got["failed"]
    assert got["tokens"] == body["usage"]["total_tokens"]
    # what the batch produced is in the cache: an interactive run with the same model does not call a model
    summary = run_batch(store, [S001], schema, load_settings(store=store_dir, api_key="unused"), engine="llm",
                        model="smollm2", workers=1)
    assert summary.skipped == [S001] and not summary.done
    original = store.original(S001)
    for fv in summary.results[0].values.values():
        if fv.evidence:
            assert original[fv.evidence["start"]:fv.evidence["end"]] == fv.evidence["quote"]
