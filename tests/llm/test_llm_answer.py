"""LLM-mode answering, plain and streamed, replayed from real recorded responses (tests/cassettes/).

SmolLM2-135M answers Chinese badly; these tests check that whatever it said, only what the report
supports reaches the user, and that the evidence-mode fallback still answers when its reply is rejected."""
from __future__ import annotations

import re

import pytest

from tests import llm_vcr
from tests.llm.contract import check_answer_contract

pytestmark = pytest.mark.llm

DOC = "001_6abc9caa6ce6874c"
QUESTION = "哈尔滨市交通运输局2020年查处了多少件非法营运案件？"
STREAM_DOC = "003_7c2a89f2d6290ff3"
STREAM_QUESTION = "绍兴市交通运输局2023年办理行政处罚案件多少件？"


def _claims_with_numbers(store, answer_text: str, question: str) -> list[str]:
    """Sentences of a reply stating a number that neither the question nor a report year accounts for."""
    from rag.evidence import numbers_in

    known = numbers_in(question) | {str(d.year) for d in store.docs() if d.year}
    parts = re.split(r"(?<=[。！？!?\n])", answer_text)
    return [p.strip() for p in parts if p.strip() and numbers_in(re.sub(r"\[\d+\]", "", p)) - known]


def check_outcome(store, result, question: str, raw: str, doc_id: str, fallback_quote: str, fallback_number: str):
    """What ask() must have made of the recorded reply `raw`."""
    from rag.answer import parse_llm_answer

    answer_text, quotes = parse_llm_answer(raw)
    if result.mode == "llm":
        # the reply survived verification: it is an answer (contract checked by the caller), not a refusal
        assert not result.refused and result.citations
        return
    # the reply did not survive: ask() says so in notes and falls back to evidence mode
    assert result.mode == "evidence (llm answer rejected)", result.mode
    assert not result.refused
    assert any(n.startswith("dropped") for n in result.notes), result.notes
    # every claim of the reply that carries a number is accounted for, and its numbers are not in the answer
    # unless the report (the fallback's own quote) states them
    for claim in _claims_with_numbers(store, answer_text, question):
        assert any(claim[:40] in n for n in result.notes), f"claim not reported as dropped: {claim}"
    # the fallback answers from the report
    assert fallback_number in result.answer, result.answer
    assert len(result.citations) == 1 and result.citations[0].doc_id == doc_id
    assert fallback_quote in result.citations[0].quote
    # the reply's quote lines, if it had any, were dropped too (the answer is not the model's)
    for qs in quotes.values():
        for q in qs:
            assert q not in result.answer


def test_ask_llm(sample_store, llm_settings, cassette):
    from rag.answer import ask
    from rag.evidence import numbers_in

    result = ask(sample_store, QUESTION, llm_settings)
    llm_vcr.assert_replayed(cassette)
    check_answer_contract(sample_store, result)

    (req, resp), = llm_vcr.interactions(cassette)
    body, raw = llm_vcr.request_json(req), llm_vcr.response_text(resp)
    # the request: deterministic decoding, our prompts, and the answering sentence among the sources
    assert (body["temperature"], body["seed"], body["max_tokens"]) == (0, 0, 256)
    assert "stream" not in body and "response_format" not in body
    assert [m["role"] for m in body["messages"]] == ["system", "user"]
    assert "查处各类非法营运案件152件" in body["messages"][1]["content"]
    assert body["messages"][1]["content"].rstrip().endswith(f"问题：{QUESTION}")
    # usage is the server's, passed through
    assert result.usage["prompt_tokens"] > 0 and result.usage["completion_tokens"] > 0

    check_outcome(sample_store, result, QUESTION, raw, DOC, "查处各类非法营运案件152件", "152")
    # Recorded: SmolLM2 wrote prose with "152" but gave no quote lines, so no claim could be verified.
    if result.mode != "llm":
        assert "dropped answer: no verifiable citation" in result.notes
        assert numbers_in(re.sub(r"\[\d+\]", "", result.answer)) <= {"152", "121", "2020"}


def test_ask_llm_stream(sample_store, llm_settings, cassette):
    from rag.answer import ask
    from rag.evidence import numbers_in

    deltas: list[str] = []
    result = ask(sample_store, STREAM_QUESTION, llm_settings, on_delta=deltas.append)
    llm_vcr.assert_replayed(cassette)
    check_answer_contract(sample_store, result)

    (req, resp), = llm_vcr.interactions(cassette)
    body, raw = llm_vcr.request_json(req), llm_vcr.response_text(resp)
    assert body["stream"] is True and body["temperature"] == 0 and body["seed"] == 0
    # the deltas are the recorded stream, piece by piece
    assert len(deltas) > 1
    assert "".join(deltas) == raw and raw.strip()
    # usage: the server's if it sent any, else counted locally; never empty
    assert result.usage["prompt_tokens"] > 0 and result.usage["completion_tokens"] > 0

    check_outcome(sample_store, result, STREAM_QUESTION, raw, STREAM_DOC, "13385", "13385")
    # no number the model made up (one in none of the sources it was sent) may survive
    invented = numbers_in(raw) - numbers_in(llm_vcr.request_json(req)["messages"][1]["content"])
    assert not invented & numbers_in(re.sub(r"\[\d+\]", "", result.answer)), invented
