"""Follow-up rewriting through the LLM (prompts/rewrite.txt), replayed from a real recorded response."""
from __future__ import annotations

import re

import pytest

from tests import llm_vcr

pytestmark = pytest.mark.llm

QUESTION = "哈尔滨市交通运输局2020年查处了多少件非法营运案件？"
ANSWER = "哈尔滨市交通运输局（2020年）：查处各类非法营运案件152件。[1]"
FOLLOWUP = "那罚款呢？"


def test_rewrite_llm(sample_store, llm_settings, cassette):
    from rag.followup import rewrite, rewrite_heuristic
    from rag.llm import LLM
    from rag.retrieve import named_docs

    docs = sample_store.docs()
    out = rewrite([(QUESTION, ANSWER)], FOLLOWUP, docs, LLM(llm_settings))
    # the model was really asked (a cassette miss would silently fall back to the heuristic)
    llm_vcr.assert_replayed(cassette)
    assert "哈尔滨" in out, out
    assert [d.doc_id for d in named_docs(out, docs)] == ["001_6abc9caa6ce6874c"]

    # the request carried the conversation: the earlier question and answer, then the follow-up
    (req, resp), = llm_vcr.interactions(cassette)
    body = llm_vcr.request_json(req)
    assert body["max_tokens"] == 100 and body["temperature"] == 0 and body["seed"] == 0
    assert [m["role"] for m in body["messages"]] == ["user"]
    prompt = body["messages"][0]["content"]
    assert f"问：{QUESTION}\n答：{ANSWER}" in prompt
    assert f"追问：{FOLLOWUP}" in prompt

    # what rewrite() made of the recorded reply: the model's first line if it still names the report,
    # else the heuristic (the guard against a rewrite that lost the subject)
    raw = llm_vcr.response_text(resp)
    first = raw.strip().splitlines()[0].strip() if raw.strip() else ""
    first = re.sub(r"^(?:改写后的问题|问题)\s*[:：]\s*", "", first)
    if first and len(first) <= 200 and named_docs(first, docs):
        assert out == first
    else:
        assert out == rewrite_heuristic(QUESTION, FOLLOWUP, docs) == "哈尔滨市交通运输局2020年那罚款呢？"
