"""Evidence on the sentence level: what a question asks for, value spotting, sentence scoring,
quote alignment and number grounding. Shared by answering, extraction and verification."""
from __future__ import annotations

import difflib
import re
from dataclasses import dataclass, field

from .clean import View, fold, sentence_spans
from .textproc import key_terms

# --- values -------------------------------------------------------------------------------------

COUNT_UNITS = "件次|人次|场次|家次|批次|学时|课时|小时|件|起|个|项|次|人|位|场|家|条|份|台|辆|户|名|期|篇|部|宗|张|本|所|处|支|艘|公里"
_NUM = r"\d+(?:,\d{3})*(?:\.\d+)?"
CN_DIGITS = "零〇一二两三四五六七八九十百千万"
VALUE_PATTERNS = {
    "percent": re.compile(rf"({_NUM})\s*%|百分之(?:百|{_NUM}|[{CN_DIGITS}]+)"),
    "amount": re.compile(rf"({_NUM})\s*(万万元|亿元|万元|千元|元)"),
    # a lone 一 is a word (一个, 一次), not a count
    "count": re.compile(rf"({_NUM}|(?!一[^十百千])[{CN_DIGITS}]{{1,4}})\s*(?:余|多)?\s*({COUNT_UNITS})(?![\u4e00-\u9fff]{{0,1}}年)"),
    "name": re.compile(r"《[^《》]{2,80}》|“[^“”]{2,40}”"),
}
_KIND_CUES = [
    ("percent", re.compile(r"率|百分比|比例|占比|%|百分之")),
    ("amount", re.compile(r"金额|罚款|罚没|多少钱|万元|资金|收入|经费|费用|涉案金额|投入|补助|补贴")),
    ("count", re.compile(rf"多少|几(?:{COUNT_UNITS}|个|件)|数量|件数|数目|总数|(?:{COUNT_UNITS})数")),
    ("date", re.compile(r"何时|什么时候|哪一?天|日期|哪一?年")),
    ("name", re.compile(r"名称|全称|称号|荣誉|什么文件|哪个文件|哪部|哪些文件|叫什么|谁|哪家|哪个单位|哪些单位|什么制度|哪些制度|哪项|什么平台|什么方案|什么办法")),
]
QUESTION_WORDS = re.compile(r"多少|几|是否|哪些|哪个|什么|怎么|如何|吗|呢")


def asked_kinds(question: str) -> list[str]:
    """The kinds of value a question asks for; a question can ask for several (件数 and 罚款)."""
    q = fold(question)
    kinds = [k for k, pat in _KIND_CUES if pat.search(q)]
    if "percent" in kinds and "count" in kinds and not re.search(rf"多少(?:{COUNT_UNITS})|几", q):
        kinds.remove("count")  # "出庭率是多少" asks for a rate, not a count
    if "amount" in kinds and "count" in kinds and not re.search(rf"多少(?:{COUNT_UNITS})|几|数", q):
        kinds.remove("count")
    return kinds or ["fact"]


@dataclass
class Value:
    kind: str
    text: str  # as written in the view
    start: int  # view offsets
    end: int


def find_values(text: str, kinds: list[str] | None = None, offset: int = 0) -> list[Value]:
    out: list[Value] = []
    for kind, pat in VALUE_PATTERNS.items():
        if kinds and kind not in kinds:
            continue
        for m in pat.finditer(text):
            s = text[max(0, m.start() - 1):m.start()]
            if kind == "count" and s.isdigit():
                continue
            # years and dates are not counts ("2023年", "5月")
            if kind == "count" and re.fullmatch(r"(?:19|20)\d{2}", m.group(1) or ""):
                continue
            out.append(Value(kind, m.group(0), offset + m.start(), offset + m.end()))
    return out


NUMBER_RE = re.compile(r"\d+(?:,\d{3})*(?:\.\d+)?")


def numbers_in(text: str) -> set[str]:
    """Numbers as canonical strings ('1,208' -> '1208', '3.50' -> '3.5')."""
    return {canon_number(m.group(0)) for m in NUMBER_RE.finditer(fold(text))}


def canon_number(s: str) -> str:
    s = s.replace(",", "")
    if "." in s:
        s = s.rstrip("0").rstrip(".")
    return s.lstrip("0") or "0"


# --- question terms -----------------------------------------------------------------------------

def question_terms(question: str, drop: list[str] = ()) -> list[str]:
    """Content terms of a question minus the entity names that scope it (agency, place, year)."""
    q = fold(question)
    for name in sorted(drop, key=len, reverse=True):
        if name:
            q = q.replace(name, " ")
    q = re.sub(r"(?:19|20)\d{2}\s*年(?:度)?", " ", q)
    terms = []
    for t in key_terms(q):
        t = QUESTION_WORDS.sub("", t)
        if len(t) >= 1 and not t.isdigit() and t not in ("率", "件", "个", "年", "数", "交通运输局", "交通运输", "局"):
            terms.append(t)
    return terms


# nouns a question uses for the kind of answer, which the answering sentence rarely repeats
GENERIC_ASK_NOUNS = frozenset("称号 名称 全称 名字 文件 内容 措施 做法 情况 方式 举措 数量 数字 结果 哪项 制度 办法".split())
_ASK = re.compile(r"是多少|多少|几|哪些|哪个|哪|什么|是否|有没有|吗")


def question_focus(question: str, terms: list[str]) -> list[str]:
    """The terms naming what is asked: the noun after the question word ("多少件[非法营运案件]"),
    else the term just before it ("[败诉]了几件", "[出庭]率是多少")."""
    q = fold(question)
    m = _ASK.search(q)
    if not m:
        return []
    terms = [t for t in terms if t not in GENERIC_ASK_NOUNS]
    after = re.split(r"[,。?!;，？！]", q[m.end():])[0]
    focus = [t for t in terms if t in after]
    if focus:
        return focus
    before = q[:m.start()]
    placed = sorted((before.rfind(t), t) for t in terms if t in before)
    return [placed[-1][1]] if placed else []


def _bigrams(s: str) -> set[str]:
    return {s[i:i + 2] for i in range(len(s) - 1)} if len(s) > 1 else {s}


def term_coverage(terms: list[str], text: str, weights: dict[str, float] | None = None) -> float:
    """Weighted share of the question's terms present in a text.

    Weights are IDF-like when given (rare terms decide); a term missing as a whole earns partial credit
    when most of its bigrams are there (出庭应诉率 ~ 出庭率), none for one shared bigram (行政许可 vs 行政复议).
    """
    if not terms:
        return 0.0
    total = got = 0.0
    for t in terms:
        w = weights.get(t, min(len(t), 4)) if weights else min(len(t), 4)
        total += w
        if t in text:
            got += w
        elif len(t) > 2:
            grams = _bigrams(t)
            frac = sum(1 for g in grams if g in text) / len(grams)
            if frac >= 0.6:
                got += w * 0.7 * frac
    return got / total


# --- sentences ----------------------------------------------------------------------------------

@dataclass
class Sentence:
    doc_id: str
    vstart: int
    vend: int
    text: str  # folded view text
    score: float = 0.0
    values: list[Value] = field(default_factory=list)
    focus: tuple[int, int] | None = None  # view span of the clause that carries the answer


_CLAUSE_SPLIT = re.compile(r"[,;:。!?]")


def clauses(text: str, offset: int = 0) -> list[tuple[int, int]]:
    spans, s = [], 0
    for m in _CLAUSE_SPLIT.finditer(text):
        if m.start() > s:
            spans.append((offset + s, offset + m.start()))
        s = m.end()
    if s < len(text):
        spans.append((offset + s, offset + len(text)))
    return spans


def score_sentence(view: View, doc_id: str, span: tuple[int, int], terms: list[str], kinds: list[str],
                   weights: dict[str, float] | None = None, context: str = "",
                   focus: list[str] | None = None) -> Sentence:
    """Score a sentence for a question; the focus is the clause (plus neighbours) holding the asked value.

    `context` (the section heading and the sentence before) may name the subject a terse sentence
    leaves out ("局设置法制处…。配备9名工作人员"), so it counts, a little less than the sentence itself.
    """
    a, b = span
    text = view.text[a:b]
    sent = Sentence(doc_id, a, b, text)
    cov = term_coverage(terms, text, weights)
    if context:
        cov = max(cov, 0.85 * term_coverage(terms, context + text, weights))
    # a sentence that never names what is asked (败诉, 行政复议) is not the answer however much else matches
    if focus and term_coverage(focus, context + text, weights) < 0.5:
        cov *= 0.5
    value_kinds = [k for k in kinds if k in VALUE_PATTERNS]
    if not value_kinds:
        sent.score = cov
        sent.focus = (a, b)
        return sent
    best = None
    for cs, ce in clauses(text, a):
        ctext = view.text[cs:ce]
        vals = find_values(ctext, value_kinds, cs)
        if not vals:
            continue
        # the clause itself must name what is asked, or follow directly on a clause that does
        ccov = term_coverage(terms, ctext, weights)
        prev = view.text[max(a, cs - 30):cs]
        ccov = max(ccov, 0.8 * term_coverage(terms, prev + ctext, weights))
        s = 0.5 * cov + 0.5 * ccov
        if best is None or s > best[0]:
            best = (s, cs, ce, vals)
    if best is None:
        if value_kinds == ["name"]:  # names are not always in 《》 or quotes: the sentence itself answers
            sent.score, sent.focus = cov, (a, b)
        else:
            sent.score = 0.3 * cov  # no value of the asked kind: weak evidence at best
        return sent
    sent.score, fs, fe, sent.values = best[0], best[1], best[2], best[3]
    sent.focus = (fs, fe)
    return sent


def doc_sentences(view: View, vstart: int, vend: int) -> list[tuple[int, int]]:
    return sentence_spans(view.text, vstart, vend)


# --- quotes -------------------------------------------------------------------------------------

def align_quote(quote: str, original: str, view: View, near: tuple[int, int] | None = None,
                min_ratio: float = 0.8) -> tuple[int, int] | None:
    """Original [start, end) of the text a quote means, or None.

    Exact text wins; otherwise the quote is folded (width, script, whitespace) and found in the view;
    otherwise the most similar sentence, preferably near the cited chunk, is taken if it is close enough.
    A model's slightly-off quote is thereby re-aligned to the exact span it meant, or dropped.
    """
    q = quote.strip().strip("“”\"'「」")
    if not q:
        return None
    i = original.find(q)
    if i >= 0:
        return i, i + len(q)
    fq = re.sub(r"\s+", "", fold(q))
    if not fq:
        return None
    vtext = view.text
    j = vtext.find(fq)
    if j >= 0:
        return view.span(j, j + len(fq))
    # whitespace and line breaks inside the view: compare with spaces removed
    squeezed, idx = [], []
    for k, c in enumerate(vtext):
        if not c.isspace():
            squeezed.append(c)
            idx.append(k)
    sq = "".join(squeezed)
    j = sq.find(fq)
    if j >= 0:
        return view.span(idx[j], idx[j + len(fq) - 1] + 1)
    # fuzzy: best sentence or clause window
    lo, hi = (near if near else (0, len(vtext)))
    cands = sentence_spans(vtext, max(0, lo - 200), min(len(vtext), hi + 200)) if near else sentence_spans(vtext)
    best, best_r = None, 0.0
    for s, e in cands:
        cand = re.sub(r"\s+", "", vtext[s:e])
        m = difflib.SequenceMatcher(None, fq, cand, autojunk=False)
        # upper bound of the share of the quote that can match: a short quote of a long sentence is not
        # penalised for the sentence's length
        if m.real_quick_ratio() * (len(fq) + len(cand)) / (2 * len(fq)) < min_ratio:
            continue
        r = m.ratio()
        if len(fq) < len(cand):
            # a quote may be part of a sentence: most of it must match, with one solid run, not scattered
            blocks = m.get_matching_blocks()
            if max(bl.size for bl in blocks) >= 0.5 * len(fq):
                r = max(r, sum(bl.size for bl in blocks) / len(fq))
        if r > best_r:
            best, best_r = (s, e), r
    if best and best_r >= min_ratio:
        return view.span(*best)
    return None


def grounded_numbers(claim: str, quotes: list[str], allowed: set[str] = frozenset()) -> tuple[bool, set[str]]:
    """Every number in a claim must appear in one of its quotes (or be allowed: the question's own)."""
    have = set()
    for q in quotes:
        have |= numbers_in(q)
        have |= numbers_in(_cn_numbers_to_digits(fold(q)))
    missing = {n for n in numbers_in(claim) if n not in have and n not in allowed}
    return not missing, missing


_CN_MAP = {"零": 0, "〇": 0, "一": 1, "二": 2, "两": 2, "三": 3, "四": 4, "五": 5, "六": 6, "七": 7, "八": 8, "九": 9}


def cn_to_int(s: str) -> int | None:
    """'十二' -> 12, '一百零五' -> 105, '两' -> 2; None if it is not a plain Chinese numeral."""
    if not s or any(c not in "零〇一二两三四五六七八九十百千万" for c in s):
        return None
    total, section, num = 0, 0, 0
    for c in s:
        if c in _CN_MAP:
            num = _CN_MAP[c]
        else:
            unit = {"十": 10, "百": 100, "千": 1000, "万": 10000}[c]
            if unit == 10000:
                section = (section + num) * unit
                total += section
                section = 0
            else:
                section += (num or 1) * unit
            num = 0
    return total + section + num


def _cn_numbers_to_digits(text: str) -> str:
    return re.sub(r"[零〇一二两三四五六七八九十百千]+(?=[件个项次人起场家条份])",
                  lambda m: str(cn_to_int(m.group(0)) if cn_to_int(m.group(0)) is not None else m.group(0)), text)
