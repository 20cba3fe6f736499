"""The facts table: one row per (report, field) from rule extraction with the default schema, refreshed
with the index; and set / ranking / count questions answered over it, every member cited."""
from __future__ import annotations

import json
import re
from dataclasses import dataclass

from . import GovqaError
from .clean import fold
from .schema import Schema, SchemaField, default_schema

_FACTS = """
CREATE TABLE IF NOT EXISTS facts (
    doc_id TEXT, key TEXT, value TEXT, num REAL, quote TEXT, start INTEGER, "end" INTEGER, schema_hash TEXT,
    PRIMARY KEY (doc_id, key));
"""

AGGREGATE = re.compile(r"哪些|哪个|哪几|哪家|哪一|有几个|有几家|多少个单位|多少家|多少份|几份|最多|最少|最高|最低|最大|最小|"
                       r"排名|排序|排行|前[一二三四五六七八九十\d]+名?|比较|对比|所有|各单位|各报告|分别")
_SUPER_MAX = re.compile(r"最多|最高|最大|排名第一|第一名")
_SUPER_MIN = re.compile(r"最少|最低|最小")
_RANK = re.compile(r"排名|排序|排行|从高到低|从多到少|从低到高|从少到多")
_COUNT_Q = re.compile(r"有几个|有几家|多少个单位|多少家|多少份|几份")
_OPS = [
    (re.compile(r"(?:超过|高于|大于|多于)\s*(\d+(?:\.\d+)?)"), ">"),
    (re.compile(r"(?:不少于|不低于|至少)\s*(\d+(?:\.\d+)?)"), ">="),
    (re.compile(r"(?:低于|少于|小于|不足|不到)\s*(\d+(?:\.\d+)?)"), "<"),
    (re.compile(r"(\d+(?:\.\d+)?)\s*(?:%|件|个|起|万元|元)?\s*(?:以上|及以上)"), ">="),
    (re.compile(r"(\d+(?:\.\d+)?)\s*(?:%|件|个|起|万元|元)?\s*(?:以下|及以下)"), "<="),
    (re.compile(r"(?:达到了?|达|实现)\s*(\d+(?:\.\d+)?)"), ">="),
    (re.compile(r"(?:为|是|等于)\s*(\d+(?:\.\d+)?)"), "=="),
]


def _db(store):
    store.db.executescript(_FACTS)
    return store.db


def refresh_facts(store, doc_ids: list[str] | None = None, schema: Schema | None = None) -> None:
    """Re-extract facts for these reports (all when None) and drop facts of reports no longer indexed."""
    from .batch import extract_rules

    schema = schema or default_schema()
    db = _db(store)
    known = {d.doc_id for d in store.docs()}
    targets = sorted(known if doc_ids is None else set(doc_ids) & known)
    rows = []
    for doc_id in targets:
        ex = extract_rules(store, doc_id, schema)
        for key, fv in ex.values.items():
            ev = fv.evidence or {}
            num = float(fv.value) if isinstance(fv.value, (int, float)) and not isinstance(fv.value, bool) else None
            rows.append((doc_id, key, json.dumps(fv.value, ensure_ascii=False), num, ev.get("quote"),
                         ev.get("start"), ev.get("end"), schema.hash))
    with db:
        if doc_ids is None:
            db.execute("DELETE FROM facts")
        else:
            db.executemany("DELETE FROM facts WHERE doc_id=?", [(d,) for d in doc_ids])
        db.execute(f"DELETE FROM facts WHERE doc_id NOT IN ({','.join('?' * len(known)) or 'NULL'})", sorted(known))
        db.executemany("INSERT OR REPLACE INTO facts VALUES (?,?,?,?,?,?,?,?)", rows)


def ensure_facts(store) -> Schema:
    """Facts exist and were made with the current default schema (it may have been edited)."""
    schema = default_schema()
    db = _db(store)
    hashes = {r[0] for r in db.execute("SELECT DISTINCT schema_hash FROM facts")}
    n_docs = len(store.docs())
    n_fact_docs = db.execute("SELECT COUNT(DISTINCT doc_id) FROM facts").fetchone()[0]
    if hashes != {schema.hash} or n_fact_docs != n_docs:
        if n_docs:
            refresh_facts(store, None, schema)
    return schema


@dataclass
class Fact:
    doc_id: str
    key: str
    value: object
    num: float | None
    quote: str | None
    start: int | None
    end: int | None


def facts_table(store) -> dict[str, dict[str, Fact]]:
    ensure_facts(store)
    out: dict[str, dict[str, Fact]] = {}
    for r in store.db.execute('SELECT doc_id, key, value, num, quote, start, "end" FROM facts ORDER BY doc_id'):
        out.setdefault(r[0], {})[r[1]] = Fact(r[0], r[1], json.loads(r[2]), r[3], r[4], r[5], r[6])
    return out


_WHERE = re.compile(r"^\s*([A-Za-z_][A-Za-z0-9_]*)\s*(>=|<=|!=|==|=|>|<|~)\s*(.+?)\s*$")


def filter_facts(store, where: list[str]) -> list[str]:
    """doc ids whose facts satisfy every condition 'key op value' (op: = == != > >= < <= ~ for contains)."""
    table = facts_table(store)
    schema = default_schema()
    keys = {f.key for f in schema.fields}
    conds = []
    for w in where:
        m = _WHERE.match(w)
        if not m:
            raise GovqaError(f"cannot read filter '{w}' (use key>=value, key=value, key~text)")
        if m.group(1) not in keys:
            raise GovqaError(f"unknown field '{m.group(1)}' in filter (fields: {', '.join(sorted(keys))})")
        conds.append((m.group(1), "==" if m.group(2) == "=" else m.group(2), m.group(3)))
    return [doc_id for doc_id, facts in table.items()
            if all(_holds(facts.get(k), op, v) for k, op, v in conds)]


def _holds(fact: Fact | None, op: str, raw: str) -> bool:
    if fact is None or fact.value is None:
        return op == "==" and raw in ("null", "None")
    if op == "~":
        return fold(raw) in fold(str(fact.value))
    if fact.num is not None:
        try:
            x = float(raw.rstrip("%"))
        except ValueError:
            return False
        return {">": fact.num > x, ">=": fact.num >= x, "<": fact.num < x, "<=": fact.num <= x,
                "==": abs(fact.num - x) < 1e-9, "!=": abs(fact.num - x) >= 1e-9}[op]
    s = str(fact.value)
    return {"==": fold(s) == fold(raw), "!=": fold(s) != fold(raw)}.get(op, False)


# --- aggregate questions --------------------------------------------------------------------------

def _field_score(f: SchemaField, q: str) -> float:
    best = 0.0
    for word in [f.label, *f.cues.keywords]:
        w = fold(word)
        if w and w in q:
            best = max(best, len(w))
        elif len(w) >= 3:
            grams = {w[i:i + 2] for i in range(len(w) - 1)}
            hit = sum(1 for g in grams if g in q) / len(grams)
            if hit >= 0.6:
                best = max(best, hit * len(w) * 0.8)
    return best


def match_field(schema: Schema, question: str) -> SchemaField | None:
    q = fold(question)
    scored = [(f, _field_score(f, q)) for f in schema.fields if f.type in ("integer", "number", "percent", "amount")]
    scored.sort(key=lambda x: -x[1])
    if scored and scored[0][1] >= 2:
        # a rate question names the rate ("出庭率"), not the case count ("出庭应诉案件")
        if "率" in q:
            rates = [x for x in scored if x[0].type == "percent" and x[1] >= 2]
            if rates:
                return rates[0][0]
        return scored[0][0]
    return None


_SET_Q = re.compile(r"哪些|哪几|哪家|哪个单位|哪个部门|哪个地方|有几个单位|多少个单位")


def is_set_question(store, question: str) -> bool:
    """'哪些单位…' with no particular report named: the answer is a set of reports."""
    from .retrieve import named_docs

    return bool(_SET_Q.search(fold(question))) and not named_docs(question, store.docs())


def answer_aggregate(store, question: str):
    """An Answer for questions about sets, rankings and counts across reports; None for other questions."""
    from .answer import Answer, Citation
    from .retrieve import named_docs, years_in

    q = fold(question)
    if not AGGREGATE.search(q):
        return None
    docs = {d.doc_id: d for d in store.docs()}
    named = named_docs(question, list(docs.values()))
    if len(named) == 1 or (named and not (_SUPER_MAX.search(q) or _SUPER_MIN.search(q) or _RANK.search(q))):
        return None  # about named reports: the per-report answering path handles it
    schema = ensure_facts(store)
    table = facts_table(store)
    years = years_in(question)
    fld = match_field(schema, question)
    pool = [d for d in (named or docs.values())]
    if fld is None:
        if years and re.search(r"报告|单位|哪些|哪个", q):
            fld = schema.field("year") if any(f.key == "year" for f in schema.fields) else None
            cond = ("==", float(years[0]))
            years = []
        elif "行政执法工作报告" in q or "法治政府建设年度报告" in q:
            want = "行政执法工作报告" if "行政执法工作报告" in q else "法治政府建设年度报告"
            members = [d for d in pool if d.meta.get("report_type") == want]
            return _set_answer(store, question, members, table, "report_type", schema, Answer, Citation)
        else:
            return None
    else:
        cond = None
        q_wo_years = re.sub(r"(?:19|20)\d{2}\s*年度?", " ", q)
        for pat, op in _OPS:
            m = pat.search(q_wo_years)
            if m:
                cond = (op, float(m.group(1)))
                break
    if fld is None:
        return None
    if years:
        pool = [d for d in pool if d.year in years]
    have = [(d, table.get(d.doc_id, {}).get(fld.key)) for d in pool]
    have = [(d, f) for d, f in have if f is not None and f.value is not None]
    if _SUPER_MAX.search(q) or _SUPER_MIN.search(q):
        nums = [(d, f) for d, f in have if f.num is not None]
        if not nums:
            return _none_answer(question, fld, len(pool), Answer)
        pick = max if _SUPER_MAX.search(q) else min
        target = pick(f.num for _, f in nums)
        members = [d for d, f in nums if f.num == target]
        return _set_answer(store, question, members, table, fld.key, schema, Answer, Citation,
                           note=f"在给出{fld.label}的{len(nums)}份报告中比较（共{len(pool)}份）。")
    if _RANK.search(q):
        nums = sorted([(d, f) for d, f in have if f.num is not None], key=lambda x: -x[1].num)
        if re.search(r"从低到高|从少到多", q):
            nums.reverse()
        return _set_answer(store, question, [d for d, _ in nums], table, fld.key, schema, Answer, Citation)
    if cond is not None:
        op, x = cond
        members = [d for d, f in have if f.num is not None and _holds(f, op, str(x))]
    else:
        members = [d for d, _ in have]
    if not have:
        return _none_answer(question, fld, len(pool), Answer)
    return _set_answer(store, question, members, table, fld.key, schema, Answer, Citation,
                       count=bool(_COUNT_Q.search(q)),
                       note=f"共检查{len(pool)}份报告，其中{len(have)}份给出了{fld.label}。")


def _none_answer(question: str, fld: SchemaField, n: int, Answer):
    return Answer(question, f"在{n}份报告中，没有报告给出{fld.label}。", True, "facts")


def _set_answer(store, question, members, table, key, schema, Answer, Citation, note: str = "", count: bool = False):
    label = schema.field(key).label if any(f.key == key for f in schema.fields) else key
    if not members:
        return Answer(question, f"没有报告满足这个条件。{note}".strip(), False, "facts", notes=[note] if note else [])
    lines, cites = [], []
    for d in members:
        f = table.get(d.doc_id, {}).get(key)
        if f is None or f.quote is None:
            continue
        n = len(cites) + 1
        cites.append(Citation(n, d.doc_id, d.source, d.agency, d.year, store.section_at(d.doc_id, f.start) or label,
                              f.quote, f.start, f.end))
        lines.append(f"{n}. {d.agency}（{d.year}年）：{f.quote.strip()}[{n}]")
    head = f"共{len(cites)}个单位：" if count else ""
    return Answer(question, head + "\n".join(lines), False, "facts", cites, notes=[note] if note else [])
