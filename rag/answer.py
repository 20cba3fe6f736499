"""Answering: scope the question, retrieve, answer (evidence mode or LLM mode), verify, return one contract."""
from __future__ import annotations

import re
from dataclasses import asdict, dataclass, field
from typing import Callable

from .clean import fold
from .config import Settings
from .evidence import (Sentence, align_quote, asked_kinds, doc_sentences, grounded_numbers, numbers_in,
                       question_focus, question_terms, score_sentence)
from .index import DocRecord, Store
from .retrieve import Hit, named_docs, resolve_filters, search, short_names, years_in

MIN_SCORE = 0.5
GENERIC_PLACES = {"全国", "全省", "全市", "全县", "全区", "中国", "我国", "本市", "本区", "本县", "各地", "市", "县", "区", "省"}


@dataclass
class Citation:
    n: int
    doc_id: str
    source: str
    agency: str
    year: int | None
    section: str
    quote: str
    start: int
    end: int


@dataclass
class Answer:
    question: str
    answer: str
    refused: bool
    mode: str
    citations: list[Citation] = field(default_factory=list)
    usage: dict = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    standalone: str = ""  # the question as answered, after follow-up rewriting

    def as_json(self) -> dict:
        d = asdict(self)
        if not d["standalone"] or d["standalone"] == d["question"]:
            d.pop("standalone")
        return d


# --- scope ----------------------------------------------------------------------------------------

@dataclass
class Scope:
    doc_ids: list[str] | None
    named: list[DocRecord]
    refusal: str = ""


def _places_in(question: str) -> list[str]:
    """Place names the question uses as a subject ("杭州市", "长沙市交通运输局"), not as an adjective
    ("“枫桥式”执法站所")."""
    import jieba.posseg as pseg

    from .textproc import _jieba

    _jieba()
    q = fold(question)
    out, pos = [], 0
    for w in pseg.cut(q):
        nxt = q[pos + len(w.word): pos + len(w.word) + 5]
        pos += len(w.word)
        if w.flag != "ns" or w.word in GENERIC_PLACES:
            continue
        if w.word[-1] in "省市区县州旗" or re.match(r"(?:交通运输|[省市区县]|局|委|厅|政府)", nxt):
            out.append(w.word)
    return out


def scope_question(store: Store, question: str, agency: str | None = None, year: int | None = None,
                   doc_ids: list[str] | None = None) -> Scope:
    """Which reports a question is about. A question naming an agency or year we do not hold is refused,
    never answered from some other report."""
    docs = store.docs()
    explicit = resolve_filters(store, agency, year, doc_ids)
    if explicit is not None:
        return Scope(explicit, [d for d in docs if d.doc_id in explicit],
                     "" if explicit else "没有符合筛选条件的报告。")
    named = named_docs(question, docs)
    years = years_in(question)
    if not named:
        places = [p for p in _places_in(question)
                  if not any(p in n or n in p for d in docs for n in short_names(d) if len(n) >= 2)]
        if places:
            return Scope([], [], f"库中没有关于“{places[0]}”的报告，无法回答。")
    if named and years:
        in_year = [d for d in named if d.year in years]
        if not in_year:
            have = "、".join(f"{d.agency}{d.year}年" for d in named)
            return Scope([], named, f"库中只有{have}的报告，没有{years[0]}年的，无法回答。")
        named = in_year
    if named:
        return Scope([d.doc_id for d in named], named)
    if years:
        in_year = [d.doc_id for d in docs if d.year in years]
        if in_year:
            return Scope(in_year, [])
    return Scope(None, [])


# --- evidence mode --------------------------------------------------------------------------------

def _candidates(store: Store, hits: list[Hit], terms: list[str], kinds: list[str],
                focus: list[str] | None = None) -> list[Sentence]:
    out: list[Sentence] = []
    seen = set()
    weights = store.term_weights(terms)
    for rank, h in enumerate(hits):
        view = store.view(h.doc_id)
        prev_end = None
        heading = h.section.rsplit(" > ", 1)[-1]
        for span in doc_sentences(view, h.vstart, h.vend):
            prev = view.text[max(h.vstart, span[0] - 80):span[0]] if prev_end is not None else ""
            prev_end = span[1]
            if (h.doc_id, span) in seen:
                continue
            seen.add((h.doc_id, span))
            s = score_sentence(view, h.doc_id, span, terms, kinds, weights, heading + " " + prev, focus)
            s.score += 0.05 / (1 + rank)  # retrieval rank breaks ties
            out.append(s)
    out.sort(key=lambda s: -s.score)
    return out


def _focus_span(store: Store, s: Sentence, kinds: list[str]) -> tuple[int, int]:
    """The answer clause plus directly adjacent clauses that carry asked values ("152件,罚款121万元")."""
    from .evidence import clauses, find_values

    if s.focus is None:
        return s.vstart, s.vend
    view = store.view(s.doc_id)
    cl = clauses(view.text[s.vstart:s.vend], s.vstart)
    value_kinds = [k for k in kinds if k != "fact"]
    idx = next((i for i, c in enumerate(cl) if c[0] <= s.focus[0] < c[1] or c == s.focus), None)
    if idx is None:
        return s.focus
    lo = hi = idx
    while hi + 1 < len(cl) and find_values(view.text[cl[hi + 1][0]:cl[hi + 1][1]], value_kinds):
        hi += 1
    return cl[lo][0], cl[hi][1]


def _citation(store: Store, doc: DocRecord, section: str, view_span: tuple[int, int], n: int) -> Citation:
    view = store.view(doc.doc_id)
    start, end = view.span(*view_span)
    return Citation(n, doc.doc_id, doc.source, doc.agency, doc.year, section,
                    store.original(doc.doc_id)[start:end], start, end)


def _section_of(hits: list[Hit], doc_id: str, vpos: int) -> str:
    for h in hits:
        if h.doc_id == doc_id and h.vstart <= vpos < h.vend:
            return h.section
    return ""


def split_subquestions(question: str) -> list[str]:
    """'…多少件？办理满意率是多少？' asks two things; each part is answered on its own."""
    parts = [p.strip() for p in re.split(r"(?<=[?？])", question) if p.strip(" ?？")]
    return parts if len(parts) > 1 else [question]


def evidence_answer(store: Store, question: str, scope: Scope, k: int = 10) -> Answer:
    docs = {d.doc_id: d for d in store.docs()}
    drop = [n for d in docs.values() for n in short_names(d)]
    groups: list[list[str] | None]
    if scope.named and len(scope.named) >= 2:
        groups = [[d.doc_id] for d in scope.named]  # one answer line per named report
    else:
        groups = [scope.doc_ids]
    lines, cites = [], []
    notes = []
    for part in split_subquestions(question):
        kinds = asked_kinds(part)
        terms = question_terms(part, drop)
        focus = question_focus(part, terms)
        notes.append(f"问题要点：{'、'.join(terms) or '无'}；所问类型：{'、'.join(kinds)}")
        # Once scoped, names and years only add noise to ranking inside the scoped reports.
        query = " ".join(terms) if scope.doc_ids and terms else part
        for g in groups:
            hits = search(store, query, k=k, doc_ids=g, auto_scope=False) if g is None or g else []
            cands = _candidates(store, hits, terms, kinds, focus)
            wants_value = any(x in ("percent", "amount", "count") for x in kinds)
            if not cands or cands[0].score < MIN_SCORE or (wants_value and not cands[0].values):
                if g and len(groups) > 1:
                    lines.append(f"{docs[g[0]].agency}：报告中未找到相关内容。")
                continue
            best = cands[0]
            doc = docs[best.doc_id]
            view = store.view(doc.doc_id)
            key = (doc.doc_id, best.vstart, best.vend)
            existing = next((c for c in cites if (c.doc_id, *view.to_view(c.start, c.end)) == key), None)
            if existing is None:
                existing = _citation(store, doc, _section_of(hits, best.doc_id, best.vstart),
                                     (best.vstart, best.vend), len(cites) + 1)
                cites.append(existing)
            fs, fe = _focus_span(store, best, kinds)
            o0, o1 = view.span(fs, fe)
            claim = store.original(doc.doc_id)[o0:o1].strip().rstrip("。;；,，")
            who = f"{doc.agency}（{doc.year}年）" if doc.year else doc.agency
            line = f"{who}：{claim}。[{existing.n}]"
            if line not in lines:
                lines.append(line)
    if not cites:
        return Answer(question, "报告中没有找到能回答这个问题的内容。", True, "evidence", notes=notes)
    return Answer(question, "\n".join(lines), False, "evidence", cites)


# --- LLM mode -------------------------------------------------------------------------------------

_QUOTE_LINE = re.compile(r"^\s*\[(\d+)\]\s*[:：]?\s*[“\"「『](.+?)[”\"」』]\s*$", re.M)
_MARK = re.compile(r"\[(\d+)\]")
_REFUSAL = re.compile(r"没有(?:找到|提及|提到|相关|涉及)|未(?:提及|提到|找到|说明|披露)|无法(?:回答|确定)|不清楚|not (?:mentioned|stated|found)")


def build_sources(store: Store, hits: list[Hit], budget: int) -> tuple[str, list[Hit]]:
    from .llm import count_tokens, truncate_tokens

    parts, used, total = [], [], 0
    for h in hits:
        head = f"[{len(used) + 1}] {h.agency} {h.year or ''}年 | {h.section or '开头'}\n"
        body = h.text.strip()
        cost = count_tokens(head + body)
        if total + cost > budget:
            room = budget - total - count_tokens(head)
            if room < 60:
                break
            body = truncate_tokens(body, room)
            cost = budget - total
        parts.append(head + body)
        used.append(h)
        total += cost
    return "\n\n".join(parts), used


def parse_llm_answer(text: str) -> tuple[str, dict[int, list[str]]]:
    """Split a model's reply into the answer and its quotes per source number."""
    body = text.strip()
    quotes: dict[int, list[str]] = {}
    for m in _QUOTE_LINE.finditer(body):
        quotes.setdefault(int(m.group(1)), []).append(m.group(2).strip())
    cut = re.search(r"^\s*(?:引用|引文|来源|出处|参考)\s*[:：]?\s*$", body, re.M)
    answer = body[:cut.start()] if cut else _QUOTE_LINE.sub("", body)
    answer = re.sub(r"^\s*(?:答案|回答)\s*[:：]\s*", "", answer.strip())
    return answer.strip(), quotes


def verify_answer(store: Store, question: str, answer: str, quotes: dict[int, list[str]], used: list[Hit],
                  mode: str) -> Answer:
    """Keep only what the reports support: exact quotes, known markers, numbers found in the quotes."""
    notes: list[str] = []
    cites: list[Citation] = []
    by_source: dict[int, list[int]] = {}  # source number -> citation numbers
    for src in sorted(set(quotes) | {int(m) for m in _MARK.findall(answer)}):
        if not 1 <= src <= len(used):
            notes.append(f"dropped marker [{src}]: no such source")
            continue
        h = used[src - 1]
        original, view = store.original(h.doc_id), store.view(h.doc_id)
        for q in quotes.get(src, []):
            span = align_quote(q, original, view, near=(h.vstart, h.vend))
            if span is None:
                notes.append(f"dropped quote for [{src}]: not in {h.doc_id}: {q[:40]}")
                continue
            c = Citation(0, h.doc_id, h.source, h.agency, h.year, h.section, original[span[0]:span[1]], *span)
            if all((c.doc_id, c.start, c.end) != (x.doc_id, x.start, x.end) for x in cites):
                cites.append(c)
            by_source.setdefault(src, []).append(next(i for i, x in enumerate(cites)
                                                      if (x.doc_id, x.start, x.end) == (c.doc_id, c.start, c.end)))
    # claims: sentences of the answer, each must be grounded in the quotes it cites (or any quote)
    allowed = numbers_in(question) | {str(d.year) for d in store.docs() if d.year}
    kept: list[str] = []
    for claim in re.split(r"(?<=[。！？!?\n])", answer):
        if not claim.strip():
            continue
        srcs = [int(m) for m in _MARK.findall(claim)]
        cited = [cites[i] for s in srcs for i in by_source.get(s, [])] or cites
        ok, missing = grounded_numbers(_MARK.sub("", claim), [c.quote for c in cited], allowed)
        if not ok:
            notes.append(f"dropped claim with numbers not in its quotes ({', '.join(sorted(missing))}): {claim.strip()[:60]}")
            continue
        kept.append(claim)
    # renumber: citations in order of first use; markers to unknown sources vanish
    order: list[int] = []
    def remark(m: re.Match) -> str:
        idxs = by_source.get(int(m.group(1)), [])
        if not idxs:
            return ""
        out = []
        for i in idxs:
            if i not in order:
                order.append(i)
            out.append(f"[{order.index(i) + 1}]")
        return "".join(dict.fromkeys(out))
    text = _MARK.sub(remark, "".join(kept)).strip()
    final = []
    for new_n, i in enumerate(order, 1):
        c = cites[i]
        c.n = new_n
        final.append(c)
    refused = not text or (not final and bool(_REFUSAL.search(text)))
    if not final and text and not refused:
        # an answer with no surviving evidence is not an answer
        notes.append("dropped answer: no verifiable citation")
        text, refused = "", True
    return Answer(question, text or "报告中没有找到能回答这个问题的内容。", refused, mode, final, notes=notes)


def llm_answer(store: Store, question: str, scope: Scope, settings: Settings, k: int = 8, model: str | None = None,
               on_delta: Callable[[str], None] | None = None) -> Answer:
    from .llm import LLM
    from .prompts import render

    hits = search(store, question, k=k, doc_ids=scope.doc_ids, auto_scope=False) if scope.doc_ids != [] else []
    if scope.named and len(scope.named) >= 2:
        per = max(2, k // len(scope.named))
        hits = [h for d in scope.named for h in search(store, question, k=per, doc_ids=[d.doc_id], auto_scope=False)]
    sources, used = build_sources(store, hits, settings.context_tokens)
    llm = LLM(settings, model)
    messages = [{"role": "system", "content": render("answer_system")},
                {"role": "user", "content": render("answer_user", question=question, sources=sources or "（无）")}]
    comp = llm.chat(messages, on_delta=on_delta)
    answer_text, quotes = parse_llm_answer(comp.text)
    result = verify_answer(store, question, answer_text, quotes, used, "llm")
    result.usage = comp.usage
    return result


# --- questions across reports, outside the schema ------------------------------------------------

_SET_WORDS = re.compile(r"^(?:请问)?(?:有)?(?:哪些|哪个|哪几个|哪几家|哪家)(?:单位|部门|报告|地方|局)?(?:的报告|在报告中|报告中)?(?:的|在|中)?")


def per_report_answer(store: Store, question: str, settings: Settings, mode: str, k: int = 8,
                      model: str | None = None) -> Answer:
    """'哪些单位…' about something no schema field covers: ask each report on its own, keep those that say so."""
    core = _SET_WORDS.sub("", fold(question)).strip() or question
    lines, cites, notes = [], [], []
    usage: dict = {}
    for d in store.docs():
        scope = Scope([d.doc_id], [d])
        if mode == "llm":
            a = llm_answer(store, core, scope, settings, k, model)
            usage = {key: usage.get(key, 0) + a.usage.get(key, 0) for key in a.usage}
        else:
            a = evidence_answer(store, core, scope, k)
        if a.refused or not a.citations:
            continue
        c = a.citations[0]
        c.n = len(cites) + 1
        cites.append(c)
        lines.append(f"{c.n}. {d.agency}（{d.year}年）：{c.quote.strip()}[{c.n}]")
    notes.append(f"逐份检查了{len(store.docs())}份报告。")
    if not cites:
        return Answer(question, "没有报告提到这一点。", True, mode, notes=notes)
    return Answer(question, "\n".join(lines), False, mode, cites, usage, notes)


# --- entry point ----------------------------------------------------------------------------------

def ask(store: Store, question: str, settings: Settings, k: int = 8, agency: str | None = None,
        year: int | None = None, model: str | None = None, on_delta: Callable[[str], None] | None = None,
        mode: str | None = None) -> Answer:
    from . import GovqaError

    if not question or not question.strip():
        raise GovqaError("empty question")
    mode = mode or ("llm" if settings.llm_enabled else "evidence")
    if agency is None and year is None:
        from .facts import answer_aggregate, is_set_question

        agg = answer_aggregate(store, question)
        if agg is not None:
            return agg
        if is_set_question(store, question):
            return per_report_answer(store, question, settings, mode, k, model)
    scope = scope_question(store, question, agency, year)
    if scope.refusal:
        return Answer(question, scope.refusal, True, mode)
    if mode == "llm":
        result = llm_answer(store, question, scope, settings, k, model, on_delta)
        if result.refused and result.notes:
            # The model's answer did not survive verification: fall back to what the reports show.
            ev = evidence_answer(store, question, scope, k)
            if not ev.refused:
                ev.mode = "evidence (llm answer rejected)"
                ev.notes = result.notes + ev.notes
                ev.usage = result.usage
                return ev
        return result
    return evidence_answer(store, question, scope, k)
