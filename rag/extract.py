"""Structured extraction: rule engine (no key) and LLM engine, both grounded in exact evidence spans."""
from __future__ import annotations

import json
import re
from dataclasses import asdict, dataclass, field

from .clean import View, fold, sentence_spans
from .evidence import VALUE_PATTERNS, align_quote, clauses
from .headings import heading_level
from .schema import Schema, SchemaField, normalize

# Sections about next year's plans or about shortcomings state goals, not results.
PLAN_SECTION = re.compile(r"思路|计划|打算|安排|下一步|展望|存在.{0,4}问题|不足|原因分析|努力方向")


@dataclass
class FieldValue:
    value: object = None
    evidence: dict | None = None  # {quote, start, end}: original[start:end] == quote
    note: str = ""


@dataclass
class Extraction:
    doc_id: str
    source: str
    values: dict[str, FieldValue] = field(default_factory=dict)
    usage: dict = field(default_factory=dict)
    dropped: list[str] = field(default_factory=list)
    engine: str = "rules"

    def as_json(self) -> dict:
        return {"doc_id": self.doc_id, "source": self.source,
                "values": {k: v.value for k, v in self.values.items()},
                "evidence": {k: v.evidence for k, v in self.values.items()}}

    def to_cache(self) -> str:
        return json.dumps({"doc_id": self.doc_id, "source": self.source, "engine": self.engine, "usage": self.usage,
                           "dropped": self.dropped, "values": {k: asdict(v) for k, v in self.values.items()}},
                          ensure_ascii=False)

    @classmethod
    def from_cache(cls, raw: str) -> "Extraction":
        d = json.loads(raw)
        return cls(d["doc_id"], d["source"], {k: FieldValue(**v) for k, v in d["values"].items()},
                   d.get("usage", {}), d.get("dropped", []), d.get("engine", "rules"))


def _evidence(original: str, view: View, vs: int, ve: int) -> dict:
    start, end = view.span(vs, ve)
    return {"quote": original[start:end], "start": start, "end": end}


def _section_index(chunks: list[dict]) -> list[tuple[int, int, str]]:
    return [(c["vstart"], c["vend"], c["section"]) for c in chunks]


def _section_at(index, pos: int) -> str:
    for a, b, s in index:
        if a <= pos < b:
            return s
    return ""


def _kind(f: SchemaField) -> str:
    return {"percent": "percent", "amount": "amount"}.get(f.type, "count")


def _value_re(f: SchemaField) -> re.Pattern:
    if f.type in ("integer", "number") and f.cues.units:
        units = "|".join(sorted(map(re.escape, f.cues.units), key=len, reverse=True))
        return re.compile(rf"(\d+(?:,\d{{3}})*(?:\.\d+)?|[零〇两二三四五六七八九十百千]+)\s*(?:余|多)?\s*(?:{units})")
    return VALUE_PATTERNS[_kind(f)]


def rule_field(f: SchemaField, original: str, view: View, sections) -> FieldValue:
    """The best keyword→value pairing in the report, or null. The value must stand within `near`
    characters after its keyword, in the same clause group, outside excluded contexts."""
    text = view.text
    vre = _value_re(f) if f.type != "text" else None
    excl = [re.compile(p) for p in f.cues.exclude]
    best = None  # (score tuple, FieldValue)
    for s, e in sentence_spans(text):
        sent = text[s:e]
        if not any(k in sent for k in f.cues.keywords):
            continue
        if PLAN_SECTION.search(_section_at(sections, s)):
            continue  # next year's plans and self-criticism state goals, never results
        if f.type == "text" and heading_level(sent) is not None and len(sent) <= 40:
            continue  # a heading ("3.落实法律顾问制度") names the topic; the sentences under it say what was done
        for rank, kw in enumerate(f.cues.keywords):
            for km in re.finditer(re.escape(kw), sent):
                if f.type == "text":
                    cand = _text_candidate(f, sent, km, s, excl)
                    if cand is None:
                        continue
                    (cs, ce) = cand
                    # a clause that states a figure ("聘请两位律师") says more than one that names the topic
                    has_figure = bool(VALUE_PATTERNS["count"].search(text[cs:ce]))
                    score = (not has_figure, rank, s)
                    fv = FieldValue(original[slice(*view.span(cs, ce))].strip(), _evidence(original, view, cs, ce))
                else:
                    found = _value_after(sent, km, vre, f.cues.near) or _value_before(sent, km, vre)
                    if found is None:
                        continue
                    vstart, vend, vtext, backward = found
                    lo = min(km.start(), vstart)
                    ctx_start = max(0, sent.rfind(",", 0, lo) + 1, sent.rfind(":", 0, lo) + 1)
                    ctx_end = max(km.end(), vend)
                    if ctx_end - ctx_start < 12 and ctx_start > 0:
                        # "出庭率100%" alone reads poorly: take in the clause before it ("…出庭应诉案件3个,")
                        ctx_start = max(0, sent.rfind(",", 0, ctx_start - 1) + 1)
                    # exclusions look at the whole clause: "对5件规范性文件进行梳理" is a clean-up, not new ones
                    clause_end = min([i for i in (sent.find(",", ctx_end), len(sent)) if i >= 0])
                    if any(x.search(sent[ctx_start:clause_end]) for x in excl):
                        continue
                    value, note = normalize(f, vtext)
                    if value is None:
                        continue
                    score = (rank + (0.5 if backward else 0), abs(vstart - km.end()), s)
                    fv = FieldValue(value, _evidence(original, view, s + ctx_start, s + ctx_end), note)
                if best is None or score < best[0]:
                    best = (score, fv)
    return best[1] if best else FieldValue()


def _value_after(sent: str, km: re.Match, vre: re.Pattern, near: int):
    """'行政处罚案件 13385 件': the first value within `near` characters after the keyword."""
    window = sent[km.end(): km.end() + near + 20]
    vm = vre.search(window)
    if not vm or vm.start() > near:
        return None
    gap = window[:vm.start()]
    if re.search(r"[。;:]|\d", gap):
        return None  # another number or a sentence end stands between: not this keyword's value
    return km.end() + vm.start(), km.end() + vm.end(), vm.group(0), False


def _value_before(sent: str, km: re.Match, vre: re.Pattern, back: int = 4):
    """'出台1个行政规范性文件': a value standing just before the keyword it counts."""
    lo = max(0, km.start() - 40)
    last = None
    for vm in vre.finditer(sent, lo, km.start()):
        last = vm
    if last is None or km.start() - last.end() > back:
        return None
    if re.search(r"[,。;:、\d]", sent[last.end():km.start()]):
        return None
    return last.start(), last.end(), last.group(0), True


def _text_candidate(f: SchemaField, sent: str, km: re.Match, offset: int, excl) -> tuple[int, int] | None:
    """The clause holding the keyword (joined with the next when the pattern's value sits there)."""
    cl = clauses(sent, 0)
    idx = next((i for i, (a, b) in enumerate(cl) if a <= km.start() < b), None)
    if idx is None:
        return None
    a, b = cl[idx]
    if f.cues.pattern:
        pat = re.compile(f.cues.pattern)
        if not pat.search(sent[a:b]):
            if idx + 1 < len(cl) and pat.search(sent[cl[idx + 1][0]:cl[idx + 1][1]]):
                b = cl[idx + 1][1]
            else:
                return None
    if any(x.search(sent[a:b]) for x in excl):
        return None
    return offset + a, offset + b


def metadata_field(f: SchemaField, meta: dict, original: str, view: View) -> FieldValue:
    value = meta.get(f.key)
    if value in (None, ""):
        return FieldValue()
    needles = [f"{value}年" if f.key == "year" else str(value)]
    if f.key == "agency" and meta.get("region"):
        needles.append(meta["region"])
    for needle in needles:
        i = view.text.find(fold(needle))
        if i >= 0:
            # quote the clause around it, so the evidence reads as a statement, not a bare word
            a = max(view.text.rfind(c, max(0, i - 40), i) for c in ",。;:\n") + 1
            ends = [j for j in (view.text.find(c, i + len(fold(needle))) for c in ",。;:\n") if j >= 0]
            b = min(ends + [i + len(fold(needle)) + 40, len(view.text)])
            return FieldValue(value, _evidence(original, view, a, b))
    title = meta.get("title", "")
    i = view.text.find(title[:12]) if title else -1
    ev = _evidence(original, view, i, i + len(title[:12])) if i >= 0 else None
    return FieldValue(value, ev, "" if ev else "from report metadata")


def rule_extract(doc_id: str, source: str, original: str, view: View, meta: dict, chunks: list[dict],
                 schema: Schema) -> Extraction:
    sections = _section_index(chunks)
    out = Extraction(doc_id, source)
    for f in schema.fields:
        if f.source == "metadata":
            out.values[f.key] = metadata_field(f, meta, original, view)
        elif f.cues.keywords:
            out.values[f.key] = rule_field(f, original, view, sections)
        else:
            out.values[f.key] = FieldValue(note="no cues for the rule engine")
    return out


# --- LLM engine -----------------------------------------------------------------------------------

def llm_context(store, doc_id: str, schema: Schema, budget: int) -> tuple[str, list]:
    """The sections retrieved for each field, deduplicated, in report order: far fewer tokens than the report."""
    from .answer import build_sources
    from .retrieve import search

    hits = {}
    for f in schema.fields:
        if f.source == "metadata":
            continue
        q = " ".join([f.label, *f.cues.keywords[:3]])
        for h in search(store, q, k=2, doc_ids=[doc_id], auto_scope=False):
            hits.setdefault(h.chunk_id, h)
    ordered = sorted(hits.values(), key=lambda h: h.start)
    return build_sources(store, ordered, budget)


def llm_messages(schema: Schema, sources: str) -> list[dict]:
    from .prompts import render

    spec = "\n".join(f"- {f.key}（{f.label}，类型 {f.type}{'，单位 ' + f.unit if f.unit else ''}）：{f.description}"
                     for f in schema.fields if f.source != "metadata")
    return [{"role": "system", "content": render("extract_system")},
            {"role": "user", "content": render("extract_user", fields=spec, sources=sources or "（无）")}]


def verify_llm_fields(raw_text: str, schema: Schema, original: str, view: View, used) -> tuple[dict[str, FieldValue], list[str]]:
    """Parse the model's JSON and keep a value only if its quote is in the report and yields the value."""
    from pydantic import BaseModel, ValidationError

    class Item(BaseModel):
        value: object = None
        quote: str | None = None

    dropped: list[str] = []
    try:
        data = json.loads(_json_block(raw_text))
        if not isinstance(data, dict):
            raise ValueError("not an object")
    except ValueError as e:
        return {}, [f"model output is not a JSON object ({e})"]
    data = data.get("fields", data) if isinstance(data.get("fields"), dict) else data
    out: dict[str, FieldValue] = {}
    for f in schema.fields:
        if f.source == "metadata":
            continue
        raw = data.get(f.key)
        if raw is None:
            out[f.key] = FieldValue()
            continue
        try:
            item = Item.model_validate(raw if isinstance(raw, dict) else {"value": raw})
        except ValidationError:
            dropped.append(f"{f.key}: malformed item")
            out[f.key] = FieldValue()
            continue
        if item.value in (None, "", "null"):
            out[f.key] = FieldValue()
            continue
        if not item.quote:
            dropped.append(f"{f.key}: value without a quote")
            out[f.key] = FieldValue()
            continue
        span = align_quote(item.quote, original, view)
        if span is None:
            dropped.append(f"{f.key}: quote not found in the report: {item.quote[:40]}")
            out[f.key] = FieldValue()
            continue
        quote = original[span[0]:span[1]]
        value = _derivable(f, item.value, quote)
        if value is None:
            dropped.append(f"{f.key}: value {item.value!r} is not what its quote says")
            out[f.key] = FieldValue()
            continue
        out[f.key] = FieldValue(value, {"quote": quote, "start": span[0], "end": span[1]})
    return out, dropped


def _derivable(f: SchemaField, value, quote: str):
    """The value if the quote states it (after unit normalisation), else None."""
    if f.type in ("text", "list"):
        v = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
        return value if fold(v).replace(" ", "") in fold(quote).replace(" ", "") else None
    try:
        want = float(str(value).replace(",", "").rstrip("%"))
    except ValueError:
        return None
    pat = _value_re(f)
    for m in pat.finditer(fold(quote)):
        got, _ = normalize(f, m.group(0))
        if got is not None and abs(float(got) - want) < 1e-6:
            return got
    return None


def _json_block(text: str) -> str:
    text = text.strip()
    if text.startswith("```"):
        text = re.sub(r"^```(?:json)?\s*|\s*```$", "", text)
    i, j = text.find("{"), text.rfind("}")
    return text[i:j + 1] if i >= 0 and j > i else text
