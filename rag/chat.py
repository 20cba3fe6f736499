"""The terminal chat: a REPL over `ask`, with follow-up rewriting, streaming and citation commands."""
from __future__ import annotations

import sys
from dataclasses import dataclass, field
from pathlib import Path

from rich.console import Console

from .answer import Answer, ask
from .config import Settings
from .followup import rewrite
from .index import Store
from .render import answer_view, citation_detail, docs_table

HELP = """命令：
  /sources [n]  显示第 n 条引用的完整上下文（默认全部）
  /docs         列出已索引的报告
  /reset        清空对话历史
  /help         显示帮助
  /exit         退出（也可按 Ctrl-D）"""


@dataclass
class ChatState:
    turns: list[tuple[str, str]] = field(default_factory=list)  # (standalone question, answer)
    last: Answer | None = None


def handle(line: str, state: ChatState, store: Store, settings: Settings, console: Console,
           model: str | None = None) -> bool:
    """One input line; False means leave."""
    line = line.strip()
    if not line:
        return True
    if line.startswith("/"):
        cmd, _, arg = line.partition(" ")
        if cmd in ("/exit", "/quit"):
            return False
        if cmd == "/help":
            console.print(HELP)
        elif cmd == "/reset":
            state.turns.clear()
            state.last = None
            console.print("已清空对话历史。")
        elif cmd == "/docs":
            console.print(docs_table([d.as_json() for d in store.docs()]))
        elif cmd == "/sources":
            if not state.last or not state.last.citations:
                console.print("还没有可显示的引用。")
            else:
                cites = state.last.citations
                if arg.strip():
                    if not arg.strip().isdigit() or not 1 <= int(arg) <= len(cites):
                        console.print(f"没有第 {arg.strip()} 条引用（共 {len(cites)} 条）。")
                        return True
                    cites = [cites[int(arg) - 1]]
                for c in cites:
                    for part in citation_detail(c, store.original(c.doc_id)):
                        console.print(part)
        else:
            console.print(f"未知命令 {cmd}，输入 /help 查看帮助。")
        return True
    llm = None
    if settings.llm_enabled:
        from .llm import LLM

        llm = LLM(settings, model)
    standalone = rewrite(state.turns, line, store.docs(), llm)
    if standalone != line:
        console.print(f"[dim]（理解为：{standalone}）[/dim]")
    streamed: list[str] = []

    def show(t: str) -> None:
        streamed.append(t)
        console.print(t, end="", markup=False, highlight=False)
    result = ask(store, standalone, settings, model=model, on_delta=show if llm is not None else None)
    result.question, result.standalone = line, standalone
    if streamed:
        console.print()
        console.print("[dim]── 核验后的回答 ──[/dim]")
    for part in answer_view(result):
        console.print(part)
    state.turns.append((standalone, result.answer))
    state.last = result
    return True


def run(store: Store, settings: Settings, console: Console | None = None, model: str | None = None) -> None:
    from . import GovqaError

    console = console or Console()
    mode = "LLM" if settings.llm_enabled else "证据模式（无需 API key）"
    console.print(f"[bold]govqa chat[/bold] · {len(store.docs())} 份报告 · {mode} · 输入 /help 查看命令，Ctrl-D 退出")
    state = ChatState()
    read = _reader(Path(settings.store) / "chat_history")
    while True:
        try:
            line = read()
        except EOFError:
            console.print("再见。")
            return
        except KeyboardInterrupt:
            continue
        try:
            if not handle(line, state, store, settings, console, model):
                console.print("再见。")
                return
        except GovqaError as e:
            console.print(f"[red]错误：[/red]{e}")


def _reader(history_path: Path):
    """prompt_toolkit with history on a terminal; plain input() when piped."""
    if sys.stdin.isatty() and sys.stdout.isatty():
        from prompt_toolkit import PromptSession
        from prompt_toolkit.history import FileHistory

        session = PromptSession(history=FileHistory(str(history_path)))
        return lambda: session.prompt("问> ")
    return lambda: input("问> ")
