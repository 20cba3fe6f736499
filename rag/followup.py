"""Follow-up questions in a chat, rewritten into standalone ones from the conversation."""
from __future__ import annotations

import re

from .clean import fold
from .retrieve import named_docs, short_names, years_in

_FILLER = re.compile(r"那么|那|呢|还有|又|的|吗|怎么样|如何|情况|[?？!！,，。\s]")


def rewrite_heuristic(previous: str | None, question: str, docs) -> str:
    """'那哈尔滨呢？' after '绍兴市2023年行政处罚多少件？' -> '哈尔滨市交通运输局行政处罚多少件？'."""
    if not previous:
        return question
    now, before = named_docs(question, docs), named_docs(previous, docs)
    years_now = years_in(question)
    core = fold(question)
    for d in now:
        for n in sorted(short_names(d), key=len, reverse=True):
            core = core.replace(n, "")
    core = _FILLER.sub("", re.sub(r"(?:19|20)\d{2}\s*年度?", "", core))
    if not core:
        # only a new subject and/or year: the previous question, re-aimed
        q = fold(previous)
        if now:
            names = sorted({n for d in before for n in short_names(d)}, key=len, reverse=True)
            placed = False
            for n in names:
                if n in q:
                    q = q.replace(n, "" if placed else "\0", 1)
                    placed = True
            target = "、".join(d.agency for d in now)
            q = q.replace("\0", target) if placed else target + q
            if not years_now:
                q = re.sub(r"(?:19|20)\d{2}\s*年度?", "", q)  # the old year belonged to the old subject
        if years_now:
            if re.search(r"(?:19|20)\d{2}\s*年", q):
                q = re.sub(r"(?:19|20)\d{2}(\s*年)", f"{years_now[0]}\\1", q, count=1)
            else:
                q = f"{years_now[0]}年" + q
        return q
    if not now and before:
        prefix = "、".join(d.agency for d in before)
        years_prev = years_in(previous)
        if years_prev and not years_now:
            prefix += f"{years_prev[0]}年"
        return prefix + question
    return question


def rewrite(previous_turns: list[tuple[str, str]], question: str, docs, llm=None) -> str:
    """Standalone question. With an LLM the model rewrites (prompts/rewrite.txt); without one, or if the
    model's rewrite is unusable, the heuristic does."""
    previous = previous_turns[-1][0] if previous_turns else None
    if llm is None or not previous_turns:
        return rewrite_heuristic(previous, question, docs)
    from .prompts import render

    history = "\n".join(f"问：{q}\n答：{a[:200]}" for q, a in previous_turns[-3:])
    try:
        comp = llm.chat([{"role": "user", "content": render("rewrite", history=history, question=question)}],
                        max_tokens=100)
        text = comp.text.strip().splitlines()[0].strip() if comp.text.strip() else ""
    except Exception:
        text = ""
    text = re.sub(r"^(?:改写后的问题|问题)\s*[:：]\s*", "", text)
    fallback = rewrite_heuristic(previous, question, docs)
    # a rewrite that lost the report the conversation is about is worse than none
    if not text or len(text) > 200 or (named_docs(fallback, docs) and not named_docs(text, docs)):
        return fallback
    return text
