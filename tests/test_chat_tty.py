"""`govqa chat` driven as a person would, in a real pseudo-terminal (stdlib pty; no extra packages)."""
from __future__ import annotations

import dataclasses
import fcntl
import os
import pty
import re
import select
import signal
import struct
import sys
import termios
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
S001 = "001_6abc9caa6ce6874c"

# CSI / OSC / charset / keypad sequences; cursor-forward is kept as a space first (prompt_toolkit draws
# the blank after "问>" as a cursor move)
_ANSI = re.compile(r"\x1b\[[0-?]*[ -/]*[@-~]|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)|\x1b[()][A-Za-z0-9]|\x1b[=>78]")
_FORWARD = re.compile(r"\x1b\[\d*C")


def screen_text(raw: bytes) -> str:
    return _ANSI.sub("", _FORWARD.sub(" ", raw.decode("utf-8", "replace"))).replace("\r", "")


class Terminal:
    """A child process on a pty: read what it draws, type into it, answer cursor-position requests
    the way a real terminal emulator does."""

    def __init__(self, argv: list[str], env: dict, cwd: Path, rows: int = 50, cols: int = 200):
        self.pid, self.fd = pty.fork()
        if self.pid == 0:  # child
            try:
                os.chdir(cwd)
                os.execve(argv[0], argv, env)
            finally:
                os._exit(127)
        fcntl.ioctl(self.fd, termios.TIOCSWINSZ, struct.pack("HHHH", rows, cols, 0, 0))
        self.rows = rows
        self.raw = b""
        self.closed = False
        self.status: int | None = None

    def _pump(self, timeout: float) -> None:
        if self.closed:
            time.sleep(min(timeout, 0.05))
            return
        ready, _, _ = select.select([self.fd], [], [], timeout)
        if not ready:
            return
        try:
            data = os.read(self.fd, 65536)
        except OSError:  # EIO: the child closed the terminal
            data = b""
        if not data:
            self.closed = True
            return
        for _ in range(data.count(b"\x1b[6n")):
            os.write(self.fd, f"\x1b[{self.rows};1R".encode())
        self.raw += data

    def mark(self) -> int:
        return len(self.raw)

    def expect(self, pattern: str, timeout: float, since: int = 0) -> str:
        """Wait until the screen text written since `since` matches; return that text."""
        deadline = time.monotonic() + timeout
        while True:
            text = screen_text(self.raw[since:])
            if re.search(pattern, text):
                return text
            if time.monotonic() > deadline or self.closed:
                raise AssertionError(f"did not see {pattern!r} within {timeout}s; screen since mark:\n"
                                     f"{text[-4000:]}")
            self._pump(0.2)

    def type(self, text: str) -> int:
        m = self.mark()
        os.write(self.fd, text.encode("utf-8"))
        return m

    def wait(self, timeout: float) -> int:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self._pump(0.1)
            pid, status = os.waitpid(self.pid, os.WNOHANG)
            if pid:
                while not self.closed:
                    self._pump(0.1)
                self.status = os.waitstatus_to_exitcode(status)
                return self.status
        raise AssertionError(f"process still running after {timeout}s")

    def kill(self) -> None:
        if self.status is None:
            try:
                os.kill(self.pid, signal.SIGKILL)
                os.waitpid(self.pid, 0)
            except (ProcessLookupError, ChildProcessError):
                pass
        try:
            os.close(self.fd)
        except OSError:
            pass


@pytest.fixture()
def chat(sample_store_path, tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OPENAI_", "GOVQA_"))}
    env.update(GOVQA_STORE=str(sample_store_path), TERM="xterm", PYTHONWARNINGS="ignore", HOME=str(tmp_path),
               LANG="C.UTF-8", LC_ALL="C.UTF-8")
    env.pop("COLUMNS", None)
    env.pop("LINES", None)
    term = Terminal([sys.executable, str(ROOT / "cli.py"), "chat"], env, ROOT)
    yield term
    term.kill()


def _flat(text: str) -> str:
    """Screen text with line breaks and wrapping indentation removed, for matching long sentences."""
    return re.sub(r"\s+", "", text)


def test_chat_session_in_a_terminal(chat, sample_texts):
    banner = chat.expect(r"问> ", 60)
    assert "govqa chat" in banner and "5 份报告" in banner and "证据模式" in banner

    m = chat.type("哈尔滨市交通运输局2020年查处了多少件非法营运案件？\r")
    first = chat.expect(r"152[\s\S]*mode: evidence[\s\S]*问> ", 120, m)
    assert "理解为" not in first  # a first question is taken as it is
    assert "哈尔滨市交通运输局" in first and "[1]" in first
    assert S001 in first

    m = chat.type("那罚款呢？\r")
    follow = chat.expect(r"121[\s\S]*mode: evidence[\s\S]*问> ", 60, m)
    understood = re.search(r"（理解为：([^）]*)）", follow)
    assert understood, follow
    assert "哈尔滨" in understood.group(1) and "罚款" in understood.group(1)
    answer_part = follow[understood.end():]
    assert "121万元" in _flat(answer_part)
    assert "出错" not in follow and "错误" not in follow

    m = chat.type("/sources 1\r")
    # the context block opens with the citation's head line; the next prompt follows it
    sources = chat.expect(r"\[1\] 哈尔滨市交通运输局 2020[\s\S]*问> ", 30, m)
    original = sample_texts[S001]
    quote_start = original.index("查处各类非法营运案件152件")
    sentence = original[original.rfind("。", 0, quote_start) + 1:original.index("。", quote_start) + 1].strip()
    assert "罚款121万元" in sentence
    assert _flat(sentence) in _flat(sources), sources
    assert "没有第" not in sources and "还没有可显示的引用" not in sources

    m = chat.type("\x04")
    bye = chat.expect(r"再见", 30, m)
    assert "Traceback" not in bye
    assert chat.wait(30) == 0
    assert "Traceback" not in screen_text(chat.raw)


def _recorded_handle(sample_store_path, lines: list[str]) -> str:
    from rich.console import Console

    from rag.answer import Answer, Citation
    from rag.chat import ChatState, handle
    from rag.config import load_settings
    from rag.index import Store

    settings = dataclasses.replace(load_settings(store=sample_store_path), api_key=None, base_url=None)
    store = Store(settings)
    try:
        doc = store.doc(S001)
        original = store.original(S001)
        start = original.index("查处各类非法营运案件152件")
        end = original.index("。", start) + 1
        state = ChatState()
        state.last = Answer("q", "查处各类非法营运案件152件。[1]", False, "evidence",
                            [Citation(1, S001, doc.source, doc.agency, doc.year, "", original[start:end], start, end)])
        console = Console(record=True, width=200, force_terminal=True, color_system="standard")
        for line in lines:
            assert handle(line, state, store, settings, console) is True
        return console.export_text()
    finally:
        store.close()


def test_sources_out_of_range_and_unknown_command(sample_store_path):
    out = _recorded_handle(sample_store_path, ["/sources 9", "/sources x", "/nope", "/help"])
    assert "没有第 9 条引用（共 1 条）" in out
    assert "没有第 x 条引用" in out
    assert "未知命令 /nope" in out
    assert "/sources" in out and "/exit" in out


def test_sources_renders_text_not_python_repr(sample_store_path):
    out = _recorded_handle(sample_store_path, ["/sources 1"])
    assert "查处各类非法营运案件152件" in out
    assert "<text" not in out and "Span(" not in out
    assert "\\n" not in out
