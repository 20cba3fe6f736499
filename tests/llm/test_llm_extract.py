"""LLM-engine extraction in JSON mode (run_batch engine="llm"), replayed from a real recorded response."""
from __future__ import annotations

import dataclasses
import json

import pytest

from tests import llm_vcr

pytestmark = pytest.mark.llm

DOC = "001_6abc9caa6ce6874c"


def _clear_cache(store, model_key: str) -> None:
    """run_batch caches results in the store; a cached report would make no request at all."""
    from rag.batch import _CACHE

    store.db.executescript(_CACHE)
    with store.db:
        store.db.execute("DELETE FROM extractions WHERE model = ?", (model_key,))


def test_run_batch_llm(sample_store, llm_settings, cassette):
    from rag.batch import run_batch
    from rag.evidence import grounded_numbers
    from rag.extract import _json_block
    from rag.schema import default_schema

    # SmolLM2 spends ~2 tokens per cl100k token on Chinese: a small context keeps prompt + JSON in 4096
    settings = dataclasses.replace(llm_settings, context_tokens=700, max_answer_tokens=400)
    schema = default_schema()
    _clear_cache(sample_store, f"llm:{settings.model}")
    summary = run_batch(sample_store, [DOC], schema, settings, engine="llm", workers=1)
    llm_vcr.assert_replayed(cassette)

    assert summary.done == [DOC] and not summary.failed and not summary.skipped
    (ex,) = summary.results
    assert ex.engine == f"llm:{settings.model}"
    original, doc = sample_store.original(DOC), sample_store.doc(DOC)

    # the request: JSON mode, deterministic decoding, the schema's fields and the retrieved sections
    (req, resp), = llm_vcr.interactions(cassette)
    body = llm_vcr.request_json(req)
    assert body["response_format"] == {"type": "json_object"}
    assert (body["temperature"], body["seed"], body["max_tokens"]) == (0, 0, 400)
    user = body["messages"][1]["content"]
    assert all(f"- {f.key}（" in user for f in schema.fields if f.source != "metadata")
    assert "- agency（" not in user  # metadata fields are not asked of the model

    # tokens: the server's usage for this one call, counted once
    usage = llm_vcr.response_json(resp)["usage"]
    assert summary.tokens == usage["total_tokens"] == ex.usage["total_tokens"] > 0

    # metadata fields come from the report, not the model
    for key in ("agency", "region", "year", "report_type"):
        assert ex.values[key].value == doc.meta[key], key

    # every kept model value has an exact quote that states it
    kept = {}
    for f in schema.fields:
        v = ex.values[f.key]
        if v.value is None:
            assert v.evidence is None, f.key
            continue
        assert v.evidence and v.evidence["quote"] == original[v.evidence["start"]:v.evidence["end"]], f.key
        if f.source != "metadata":
            kept[f.key] = v
            if f.type in ("integer", "number", "percent"):
                assert grounded_numbers(str(v.value), [v.evidence["quote"]])[0], (f.key, v)

    # every value the model gave that was not kept is listed as dropped, with its field
    dropped = summary.dropped.get(DOC, [])
    assert dropped == ex.dropped
    raw = llm_vcr.response_text(resp)
    try:
        data = json.loads(_json_block(raw))
    except ValueError:
        data = None
    if not isinstance(data, dict):
        assert any(d.startswith("model output is not a JSON object") for d in dropped), dropped
        assert not kept
        return
    data = data["fields"] if isinstance(data.get("fields"), dict) else data
    for f in schema.fields:
        if f.source == "metadata":
            continue
        item = data.get(f.key)
        given = item.get("value") if isinstance(item, dict) else item
        if given in (None, "", "null"):
            assert f.key not in kept, f.key
        elif f.key not in kept:
            assert any(d.startswith(f"{f.key}:") for d in dropped), (f.key, item, dropped)
    # nothing is kept that the model did not give
    assert set(kept) <= {k for k, v in data.items() if v not in (None, "", "null")}
