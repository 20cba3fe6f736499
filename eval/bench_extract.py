"""Extraction benchmark: rule-engine reports/s and field accuracy against eval/gold_extract.jsonl, and
LLM-mode prompt tokens per report (retrieved sections) against whole-report stuffing.

    python eval/bench_extract.py [--store DIR] [--json]

The token figures count the exact prompts govqa would send (tiktoken cl100k); no endpoint is needed.
"""
from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--store", help="an existing store (default: a temporary one over the bundled samples)")
    ap.add_argument("--json", action="store_true")
    ap.add_argument("--repeat", type=int, default=20, help="rule-extraction passes over the corpus")
    args = ap.parse_args()

    from rag.batch import extract_rules
    from rag.config import load_settings
    from rag.documents import sample_paths
    from rag.extract import llm_context, llm_messages
    from rag.index import Store
    from rag.llm import count_tokens
    from rag.schema import default_schema

    tmp = None
    if args.store:
        store = Store(load_settings(store=args.store))
    else:
        tmp = tempfile.TemporaryDirectory()
        store = Store(load_settings(store=tmp.name))
        store.ingest(sample_paths())
    schema = default_schema()
    settings = load_settings(store=store.path)
    docs = [d.doc_id for d in store.docs()]

    for d in docs:  # warm: views and chunks cached, jieba loaded
        extract_rules(store, d, schema)
    t0 = time.perf_counter()
    for _ in range(args.repeat):
        results = [extract_rules(store, d, schema) for d in docs]
    rule_rps = args.repeat * len(docs) / (time.perf_counter() - t0)

    gold_path = ROOT / "eval" / "gold_extract.jsonl"
    gold = {json.loads(line)["doc_id"]: json.loads(line)["values"] for line in gold_path.read_text(encoding="utf-8").splitlines() if line.strip()}
    checked = correct = exact = with_ev = 0
    misses = []
    for r in results:
        g = gold.get(r.doc_id)
        if g is None:
            continue
        for key, fv in r.values.items():
            if key not in g:
                continue
            checked += 1
            gv = g[key]
            if schema.field(key).type == "text" and key not in ("agency", "region", "report_type"):
                ok = (gv is None) == (fv.value is None)  # free text: present/absent is what can be scored
            elif isinstance(gv, (int, float)) and isinstance(fv.value, (int, float)):
                ok = abs(gv - fv.value) < 1e-6
            else:
                ok = gv == fv.value
            correct += ok
            if not ok:
                misses.append(f"{r.doc_id[:3]}.{key}: gold {gv!r}, got {fv.value!r}")
            if fv.evidence:
                with_ev += 1
                exact += store.original(r.doc_id)[fv.evidence["start"]:fv.evidence["end"]] == fv.evidence["quote"]

    per_doc = []
    for d in docs:
        sources, _ = llm_context(store, d, schema, settings.context_tokens)
        retrieved = sum(count_tokens(m["content"]) for m in llm_messages(schema, sources))
        whole = sum(count_tokens(m["content"]) for m in llm_messages(schema, store.original(d)))
        per_doc.append((retrieved, whole))
    out = {
        "reports": len(docs),
        "rule_reports_per_s": round(rule_rps, 1),
        "field_accuracy": round(correct / checked, 4) if checked else None,
        "fields_checked": checked,
        "evidence_exactness": round(exact / with_ev, 4) if with_ev else None,
        "llm_prompt_tokens_per_report_retrieved": round(statistics.mean(r for r, _ in per_doc)),
        "llm_prompt_tokens_per_report_whole": round(statistics.mean(w for _, w in per_doc)),
        "misses": misses,
    }
    out["token_ratio"] = round(out["llm_prompt_tokens_per_report_retrieved"] / out["llm_prompt_tokens_per_report_whole"], 3)
    if args.json:
        print(json.dumps(out, ensure_ascii=False, indent=2))
    else:
        for k, v in out.items():
            if k != "misses":
                print(f"{k:45s} {v}")
        for m in misses:
            print("  miss:", m)
    if tmp:
        store.close()
        tmp.cleanup()


if __name__ == "__main__":
    main()
