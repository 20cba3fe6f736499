"""`govqa eval`: retrieval recall@5 and MRR, answer accuracy, citation exactness, refusal accuracy, timing;
compared with the previous run's saved results."""
from __future__ import annotations

import json
import statistics
import time
from pathlib import Path

from . import GovqaError
from .answer import ask
from .clean import fold
from .config import Settings
from .index import Store
from .retrieve import search


def load_questions(path: Path) -> list[dict]:
    if not path.exists():
        raise GovqaError(f"{path}: evaluation questions not found")
    out = []
    for i, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if line.strip():
            try:
                out.append(json.loads(line))
            except json.JSONDecodeError:
                raise GovqaError(f"{path}:{i}: not a JSON line") from None
    return out


def _retrieval_rank(store: Store, q: dict, k: int = 5) -> int | None:
    """1-based rank of the first hit holding any gold evidence string, within k."""
    if not q.get("evidence"):
        return None
    hits = search(store, q["question"], k=k)
    for rank, h in enumerate(hits, 1):
        if any(e in h.text or fold(e) in fold(h.text) for e in q["evidence"]):
            return rank
    return 0


def run_eval(store: Store, settings: Settings, questions: list[dict], k: int = 5) -> dict:
    rows = []
    for q in questions:
        t0 = time.perf_counter()
        a = ask(store, q["question"], settings)
        dt = time.perf_counter() - t0
        blob = fold(a.answer + " ".join(c.quote for c in a.citations))
        exact = all(store.original(c.doc_id)[c.start:c.end] == c.quote for c in a.citations)
        cited_docs = {c.doc_id for c in a.citations}
        if q.get("refuse"):
            correct = a.refused
        else:
            correct = (not a.refused and all(fold(x) in blob for x in q.get("answer_contains", []))
                       and (not q.get("doc_ids") or bool(set(q["doc_ids"]) & cited_docs)))
        rank = None if q.get("refuse") else _retrieval_rank(store, q, k)
        rows.append({"id": q["id"], "kind": q.get("kind", ""), "question": q["question"], "correct": correct,
                     "refused": a.refused, "should_refuse": bool(q.get("refuse")), "citations_exact": exact,
                     "n_citations": len(a.citations), "rank": rank, "seconds": round(dt, 3), "mode": a.mode,
                     "answer": a.answer})
    return summarize(rows)


def summarize(rows: list[dict]) -> dict:
    answerable = [r for r in rows if not r["should_refuse"]]
    ranked = [r for r in answerable if r["rank"] is not None]
    times = sorted(r["seconds"] for r in rows)
    by_kind = {}
    for r in rows:
        by_kind.setdefault(r["kind"], []).append(r["correct"])
    return {
        "questions": len(rows),
        "answer_accuracy": _ratio(sum(r["correct"] for r in rows), len(rows)),
        "recall_at_5": _ratio(sum(1 for r in ranked if r["rank"]), len(ranked)),
        "mrr": round(sum(1 / r["rank"] for r in ranked if r["rank"]) / len(ranked), 4) if ranked else None,
        "citation_exactness": _ratio(sum(r["citations_exact"] for r in rows if r["n_citations"]),
                                     sum(1 for r in rows if r["n_citations"])),
        "refusal_accuracy": _ratio(sum(r["refused"] == r["should_refuse"] for r in rows), len(rows)),
        "seconds_per_question_p50": round(statistics.median(times), 3) if times else None,
        "seconds_per_question_p95": round(times[min(len(times) - 1, int(0.95 * len(times)))], 3) if times else None,
        "accuracy_by_kind": {k: _ratio(sum(v), len(v)) for k, v in sorted(by_kind.items())},
        "rows": rows,
    }


def _ratio(a: int, b: int) -> float | None:
    return round(a / b, 4) if b else None


METRICS = ["answer_accuracy", "recall_at_5", "mrr", "citation_exactness", "refusal_accuracy",
           "seconds_per_question_p50", "seconds_per_question_p95"]


def compare(current: dict, previous: dict | None) -> dict:
    if not previous:
        return {}
    return {m: (previous.get(m), current.get(m)) for m in METRICS}


def save(results: dict, results_dir: Path) -> dict | None:
    """Save as last.json, keeping the one before as previous.json; return the previous results."""
    results_dir.mkdir(parents=True, exist_ok=True)
    last = results_dir / "last.json"
    previous = None
    if last.exists():
        try:
            previous = json.loads(last.read_text(encoding="utf-8"))
        except json.JSONDecodeError:
            previous = None
        last.replace(results_dir / "previous.json")
    last.write_text(json.dumps(results, ensure_ascii=False, indent=2), encoding="utf-8")
    return previous
