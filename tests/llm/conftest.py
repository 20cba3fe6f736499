"""Fixtures for the recorded-LLM tests: replayed from tests/cassettes/ (see tests/llm_vcr.py).

Replay needs no server, no key and no network; `python -m tests.record` re-records from a real one.
"""
from __future__ import annotations

import os

import pytest

from tests import llm_vcr


def pytest_configure(config):
    config.addinivalue_line("markers", "llm: replays recorded LLM responses (tests/cassettes/); runs by default")


@pytest.fixture(scope="session")
def llm_vcr_instance():
    return llm_vcr.make_vcr()


@pytest.fixture()
def llm_settings(sample_store_path):
    """Settings pointing at the recorded endpoint. Everything that reaches the request body is fixed here,
    not taken from the environment, so bodies match the cassettes wherever the tests run."""
    from rag.config import Settings

    if llm_vcr.recording():
        base_url = os.environ.get("OPENAI_BASE_URL")
        if not base_url:
            pytest.fail("GOVQA_RECORD=1 needs OPENAI_BASE_URL (run `python -m tests.record`)")
        if os.environ.get("GOVQA_MODEL", llm_vcr.MODEL) != llm_vcr.MODEL:
            pytest.fail(f"recording must serve the model as {llm_vcr.MODEL!r} (GOVQA_MODEL)")
        api_key, timeout = os.environ.get("OPENAI_API_KEY") or llm_vcr.RECORDING_API_KEY, 1800.0
    else:
        base_url, api_key, timeout = llm_vcr.BASE_URL, llm_vcr.RECORDING_API_KEY, 10.0
    # context_tokens: SmolLM2's tokenizer spends ~1.6 tokens per cl100k token on Chinese; 3000 still fits
    # the sample question's 8 hits in the server's 4096-token window. max_retries=0: a cassette miss fails at once.
    return Settings(store=sample_store_path, embedder=None, api_key=api_key, base_url=base_url,
                    model=llm_vcr.MODEL, context_tokens=3000, max_answer_tokens=256, timeout=timeout,
                    max_retries=0)


@pytest.fixture()
def cassette(request, llm_vcr_instance):
    """tests/cassettes/<test name>.yaml around the test. In replay the file must exist (and the test checks
    with llm_vcr.assert_replayed that every interaction was served); when recording it is written afresh."""
    name = request.node.name
    path = llm_vcr.cassette_path(name)
    if llm_vcr.recording():
        path.unlink(missing_ok=True)  # record_mode "all" would otherwise keep stale interactions
    elif not path.exists():
        pytest.fail(f"no cassette {path}: record it with `python -m tests.record`")
    with llm_vcr_instance.use_cassette(f"{name}.yaml") as cass:
        yield cass
    if not llm_vcr.recording() and not cass.all_played:
        # openai reports a cassette miss as a connection error ("cannot reach the LLM endpoint"): say what it is
        pytest.fail(f"{path.name}: {cass.play_count} of {len(cass)} recorded interactions replayed. A request "
                    "did not match (method, path, JSON body): did a prompt, the retrieval or the settings change? "
                    "Re-record with `python -m tests.record`.")

