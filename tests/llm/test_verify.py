"""The verifiers on model output: the recorded replies (tests/cassettes/), and constructed inputs that unit-test
verify_answer / verify_llm_fields on what a model gets wrong: invented numbers, misquotes, unknown markers."""
from __future__ import annotations

import json

import pytest

from tests import llm_vcr
from tests.llm.contract import check_answer_contract

pytestmark = pytest.mark.llm

DOC = "001_6abc9caa6ce6874c"
QUESTION = "哈尔滨市交通运输局2020年查处了多少件非法营运案件？"
SENTENCE = "查处各类非法营运案件152件,罚款121万元"  # as the report writes it (half-width comma)


@pytest.fixture()
def three_sources(sample_store):
    """Three sources from the report, the one stating 152 first: [1] 152 chunk, [2], [3] others."""
    from rag.retrieve import search

    hits = search(sample_store, "非法营运案件 罚款", k=8, doc_ids=[DOC], auto_scope=False)
    first = next(h for h in hits if SENTENCE in h.text)
    used = [first] + [h for h in hits if h.chunk_id != first.chunk_id and "152件" not in h.text][:2]
    assert len(used) == 3
    return used


def verify(store, answer, quotes, used, question=QUESTION):
    from rag.answer import verify_answer

    result = verify_answer(store, question, answer, quotes, used, "llm")
    check_answer_contract(store, result)
    return result


# --- recorded replies -----------------------------------------------------------------------------

def test_recorded_reply_through_verifier(sample_store):
    """The reply recorded for test_ask_llm, fed to the verifier against the very sources it was given."""
    from rag.answer import build_sources, parse_llm_answer, scope_question
    from rag.prompts import render
    from rag.retrieve import search

    (req, resp), = llm_vcr.load_cassette("test_ask_llm")
    scope = scope_question(sample_store, QUESTION)
    hits = search(sample_store, QUESTION, k=8, doc_ids=scope.doc_ids, auto_scope=False)
    sources, used = build_sources(sample_store, hits, 3000)
    # retrieval is deterministic: today's sources are byte for byte what the model was sent
    assert llm_vcr.request_json(req)["messages"][1]["content"] == render("answer_user", question=QUESTION, sources=sources)

    raw = llm_vcr.response_text(resp)
    answer, quotes = parse_llm_answer(raw)
    result = verify(sample_store, answer, quotes, used)
    # the recorded reply cites nothing verifiable: nothing of it may reach the user
    if not result.citations:
        assert result.refused and result.answer == "报告中没有找到能回答这个问题的内容。"
        assert result.notes

    # even given a correct quote for the right source, its claims carry no [n] marker: still no answer
    n = next(i for i, h in enumerate(used, 1) if SENTENCE in h.text)
    if "[" not in answer:
        patched = verify(sample_store, answer, {**quotes, n: [SENTENCE]}, used)
        assert patched.refused and not patched.citations
        assert "dropped answer: no verifiable citation" in patched.notes


def _strings(x) -> list[str]:
    if isinstance(x, str):
        return [x] if x.strip() else []
    if isinstance(x, dict):
        return [s for v in x.values() for s in _strings(v)]
    if isinstance(x, list):
        return [s for v in x for s in _strings(v)]
    return []


def test_recorded_extraction_through_verifier(sample_store):
    """The JSON recorded for test_run_batch_llm, and the same reply's own strings offered as quotes for every
    asked field: text the model wrote but the report does not contain can never become evidence."""
    from rag.extract import _json_block, verify_llm_fields
    from rag.schema import default_schema

    (_, resp), = llm_vcr.load_cassette("test_run_batch_llm")
    raw = llm_vcr.response_text(resp)
    schema = default_schema()
    original, view = sample_store.original(DOC), sample_store.view(DOC)
    asked = [f.key for f in schema.fields if f.source != "metadata"]

    values, dropped = verify_llm_fields(raw, schema, original, view, [])
    for key, v in values.items():
        assert v.value is None or v.evidence["quote"] == original[v.evidence["start"]:v.evidence["end"]], key
    try:
        data = json.loads(_json_block(raw))
    except ValueError:
        data = None
    if not isinstance(data, dict):
        assert values == {} and dropped[0].startswith("model output is not a JSON object")
        return
    strings = [s for s in _strings(data) if len(s) >= 4]
    assert strings, "the recorded reply has no text to reuse"
    given = {key: {"value": 1, "quote": strings[i % len(strings)]} for i, key in enumerate(asked)}
    values, dropped = verify_llm_fields(json.dumps(given, ensure_ascii=False), schema, original, view, [])
    assert all(values[k].value is None for k in asked), values
    assert sorted(d.split(":")[0] for d in dropped) == sorted(asked), dropped


# --- verify_answer on constructed model output ---------------------------------------------------

def test_invented_number_is_dropped(sample_store, three_sources):
    r = verify(sample_store, "查处非法营运案件999件[1]。", {1: ["查处各类非法营运案件152件"]}, three_sources)
    assert "999" not in r.answer and r.refused and not r.citations
    assert any("999" in n and n.startswith("dropped claim") for n in r.notes), r.notes


def test_invented_number_dropped_true_claim_kept(sample_store, three_sources):
    r = verify(sample_store, "查处非法营运案件152件[1]。罚款999万元[1]。", {1: [SENTENCE]}, three_sources)
    assert not r.refused
    assert "152件" in r.answer and "999" not in r.answer
    assert [c.quote for c in r.citations] == [SENTENCE]
    assert any("999" in n for n in r.notes)


def test_fullwidth_punctuation_quote_realigned(sample_store, three_sources):
    r = verify(sample_store, "查处非法营运案件152件[1]。", {1: ["查处各类非法营运案件152件，罚款121万元。"]}, three_sources)
    (c,) = r.citations
    # the model's full-width comma is mapped back to the report's own text and offsets
    assert c.quote.startswith(SENTENCE) and "，" not in c.quote
    assert c.quote == sample_store.original(DOC)[c.start:c.end]
    assert r.answer == "查处非法营运案件152件[1]。"


LONG = "组织主城六区交通运输局开展城市客运市场专项整治行动," + SENTENCE  # most of the report's sentence


def test_one_character_off_quote_realigned(sample_store, three_sources):
    off = LONG.replace("案件152件", "案子152件")
    r = verify(sample_store, "查处非法营运案件152件[1]。", {1: [off]}, three_sources)
    (c,) = r.citations
    # re-aligned to the report's sentence, at its exact offsets
    assert LONG in c.quote and "案子" not in c.quote
    assert c.quote == sample_store.original(DOC)[c.start:c.end]
    assert not r.refused and r.answer == "查处非法营运案件152件[1]。"


def test_one_character_off_short_quote_realigned(sample_store, three_sources):
    r = verify(sample_store, "查处非法营运案件152件[1]。", {1: ["查处各类非法营运案子152件,罚款121万元"]}, three_sources)
    assert len(r.citations) == 1 and SENTENCE in r.citations[0].quote


def test_misquoted_number_realigned_and_claim_dropped(sample_store, three_sources):
    # the model changed the number inside its quote (and wrote full-width commas): the quote re-aligns to what
    # the report says (152), and the claim built on the changed number no longer has support
    misquote = LONG.replace("152", "153").replace(",", "，")
    r = verify(sample_store, "查处非法营运案件153件[1]。", {1: [misquote]}, three_sources)
    assert "153" not in r.answer and r.refused and not r.citations
    assert any("(153)" in n and n.startswith("dropped claim") for n in r.notes), r.notes
    assert not any(n.startswith("dropped quote") for n in r.notes), r.notes  # the quote itself was re-aligned


def test_quote_not_in_report_dropped(sample_store, three_sources):
    r = verify(sample_store, "开展交通安全大检查30次[1]。", {1: ["全市共开展交通安全大检查30次"]}, three_sources)
    assert r.refused and not r.citations and "30" not in r.answer
    assert any(n.startswith("dropped quote for [1]") for n in r.notes), r.notes


def test_unknown_marker_removed(sample_store, three_sources):
    r = verify(sample_store, "查处非法营运案件152件[1][7]。", {1: [SENTENCE], 7: ["查处各类非法营运案件152件"]},
               three_sources)
    assert r.answer == "查处非法营运案件152件[1]。"
    assert "dropped marker [7]: no such source" in r.notes
    assert len(r.citations) == 1


def test_parse_llm_answer_format():
    from rag.answer import parse_llm_answer

    answer, quotes = parse_llm_answer("答案：查处非法营运案件152件[1]。\n引用：\n[1] “查处各类非法营运案件152件”\n")
    assert answer == "查处非法营运案件152件[1]。"
    assert quotes == {1: ["查处各类非法营运案件152件"]}


# --- verify_llm_fields on constructed model output -----------------------------------------------

def _fields(store, payload):
    from rag.extract import verify_llm_fields
    from rag.schema import default_schema

    raw = payload if isinstance(payload, str) else json.dumps(payload, ensure_ascii=False)
    values, dropped = verify_llm_fields(raw, default_schema(), store.original(DOC), store.view(DOC), [])
    original = store.original(DOC)
    for v in values.values():
        if v.evidence:
            assert v.evidence["quote"] == original[v.evidence["start"]:v.evidence["end"]]
    return values, dropped


def test_llm_fields_kept_and_dropped(sample_store):
    values, dropped = _fields(sample_store, {
        "penalty_cases": {"value": 152, "quote": "查处各类非法营运案件152件，罚款121万元"},  # full-width comma
        "penalty_amount_wan": {"value": 121, "quote": "罚款121万元"},
        "normative_docs": {"value": 999, "quote": "全年共制发规范性文件1件"},  # invented number
        "litigation_cases": {"value": 3, "quote": "全年共发生行政诉讼案件3件"},  # not in the report
        "reconsideration_cases": {"value": 2},  # no quote
        "legal_advisers": {"value": None, "quote": None},
    })
    assert values["penalty_cases"].value == 152
    assert values["penalty_cases"].evidence["quote"] == SENTENCE
    assert values["penalty_amount_wan"].value == 121
    for key in ("normative_docs", "litigation_cases", "reconsideration_cases", "legal_advisers"):
        assert values[key].value is None and values[key].evidence is None, key
    assert sorted(d.split(":")[0] for d in dropped) == ["litigation_cases", "normative_docs", "reconsideration_cases"]
    assert any(d.startswith("normative_docs: value 999 is not what its quote says") for d in dropped)
    assert any(d.startswith("litigation_cases: quote not found") for d in dropped)
    assert "reconsideration_cases: value without a quote" in dropped


def test_llm_fields_not_json(sample_store):
    values, dropped = _fields(sample_store, "抱歉，我无法完成。")
    assert values == {} and dropped[0].startswith("model output is not a JSON object")
    values, dropped = _fields(sample_store, '```json\n{"penalty_cases": {"value": "152", "quote": "非法营运案件152件"}}\n```')
    assert values["penalty_cases"].value == 152 and not dropped
