"""The answer contract every LLM-mode result must keep, whatever the model said."""
from __future__ import annotations

import re

from rag.evidence import numbers_in

MARK = re.compile(r"\[(\d+)\]")


def check_answer_contract(store, result) -> None:
    # every citation quotes the report exactly, at the offsets it claims
    for c in result.citations:
        assert c.quote.strip(), c
        assert c.quote == store.original(c.doc_id)[c.start:c.end], c
    assert [c.n for c in result.citations] == list(range(1, len(result.citations) + 1))
    # every [n] in the answer refers to an existing citation, and every citation is used
    marks = {int(m) for m in MARK.findall(result.answer)}
    assert marks <= {c.n for c in result.citations}, (marks, result.answer)
    assert marks == {c.n for c in result.citations} or result.refused, (marks, result.answer)
    if result.refused:
        assert not result.citations
        return
    assert result.citations, "an answer without citations"
    # every number in the answer stands in a cited quote (report years may name the report)
    quoted = set().union(*(numbers_in(c.quote) for c in result.citations))
    years = {str(y) for y in (store.doc(c.doc_id).year for c in result.citations) if y}
    stray = numbers_in(MARK.sub("", result.answer)) - quoted - years - numbers_in(result.question)
    assert not stray, f"numbers not in any cited quote: {stray} in {result.answer!r}"
