"""Data commands of the CLI: import, train, evaluate, demo."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from app.cli import app, console, fail, import_app, run
from app.config import Settings, get_settings

SHARED_MOVIELENS = Path(__file__).resolve().parent.parent.parent / "shared" / "data" / "ml-latest-small"


def batch_settings() -> Settings:
    """Settings for batch jobs: no per-statement time budget (that is for requests)."""
    return get_settings().model_copy(update={"db_statement_timeout_seconds": 0.0})


def progress_bar() -> Progress:
    """The progress bar used by long jobs."""
    return Progress(
        TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(), console=console
    )


def _count_lines(path: Path) -> int:
    with path.open("rb") as handle:
        return max(sum(1 for _ in handle) - (0 if path.suffix.lower() in {".jsonl", ".ndjson"} else 1), 0)


def _report_skipped(skipped: list[tuple[int, str]]) -> None:
    for line, message in skipped[:50]:
        console.print(f"[yellow]line {line}:[/yellow] {message}")
    if len(skipped) > 50:
        console.print(f"… and {len(skipped) - 50} more invalid rows")


@import_app.command("content")
def import_content(
    file: Annotated[Path, typer.Argument(help="CSV (header row; tags separated by |) or JSONL file.", exists=True)],
    embed: Annotated[bool, typer.Option(help="Embed items as they are stored.")] = True,
) -> None:
    """Import content items; invalid rows are reported by line number and skipped."""
    from app.services.importer import import_content_file

    async def main(state: Any) -> Any:
        with progress_bar() as bar:
            task = bar.add_task("content", total=_count_lines(file))
            return await import_content_file(
                state.sessions,
                file,
                embed=state.recommender.embed if embed else None,
                progress=lambda n: bar.advance(task, n),
            )

    report = run(main)
    _report_skipped(report.skipped)
    console.print(f"stored {report.content} items, skipped {len(report.skipped)} invalid rows")


@import_app.command("events")
def import_events(
    file: Annotated[Path, typer.Argument(help="CSV (header row) or JSONL file of events.", exists=True)],
) -> None:
    """Import behavior events; invalid rows are reported by line number and skipped."""
    from app.services.importer import import_events_file

    async def main(state: Any) -> Any:
        with progress_bar() as bar:
            task = bar.add_task("events", total=_count_lines(file))
            return await import_events_file(state.sessions, file, progress=lambda n: bar.advance(task, n))

    report = run(main)
    _report_skipped(report.skipped)
    console.print(f"stored {report.events} events, skipped {len(report.skipped)} invalid rows")


def movielens_path(path: Path | None) -> Path:
    """The given path, or a fresh download of ml-latest-small."""
    from app.ml.datasets import DatasetUnavailable, download_movielens

    if path is not None:
        return path
    try:
        return download_movielens(get_settings().data_dir / "datasets")
    except DatasetUnavailable as exc:
        raise fail(str(exc)) from None


@import_app.command("movielens")
def import_movielens(
    path: Annotated[Path | None, typer.Argument(help="Folder with movies.csv, ratings.csv…; omit to download.")] = None,
) -> None:
    """Import MovieLens: movies as content, ratings as `rate` events (running it twice adds nothing)."""
    from app.ml.datasets import DatasetUnavailable, load_movielens
    from app.services.importer import import_movielens as do_import

    try:
        data = load_movielens(movielens_path(path), progress=True)
    except (DatasetUnavailable, ValueError) as exc:
        raise fail(str(exc)) from None
    started = time.perf_counter()

    async def main(state: Any) -> Any:
        with progress_bar() as bar:
            task = bar.add_task("ratings", total=len(data.ratings))
            return await do_import(state.sessions, data, progress=lambda n: bar.advance(task, n))

    report = run(main, batch_settings())
    console.print(
        f"{report.content} movies, {report.users} new users, {report.events} new events "
        f"in {time.perf_counter() - started:.1f}s"
    )


@app.command()
def train(
    force: Annotated[bool, typer.Option(help="Activate even if the gate prefers the active model.")] = False,
    seed: Annotated[int | None, typer.Option(help="Random seed (default RECENGINE_TRAINING_SEED).")] = None,
    factors: Annotated[int | None, typer.Option(help="Latent factors (overrides the config's als.factors).")] = None,
    iterations: Annotated[
        int | None, typer.Option(help="ALS iterations (overrides the config's als.iterations).")
    ] = None,
    config: Annotated[
        Path | None,
        typer.Option(help="Serving configuration JSON (blend weights, ALS, links); default app/ml/serving.json."),
    ] = None,
) -> None:
    """Embed new content, train ALS and the link tables, store them with the serving configuration, and
    activate the model if it passes the gate."""
    from app.ml.serving import ServingConfig
    from app.ml.training import train as do_train
    from app.services.engine import GLOBAL_GENERATION

    chosen = ServingConfig.load(config)
    overrides = {k: v for k, v in (("factors", factors), ("iterations", iterations)) if v is not None}
    if overrides:
        chosen = chosen.model_copy(update={"als": chosen.als.model_copy(update=overrides)})

    async def main(state: Any) -> Any:
        with progress_bar() as bar:
            tasks: dict[str, Any] = {}

            def step(name: str, done: int, total: int) -> None:
                if name not in tasks:  # one bar per step, updated as it advances
                    tasks[name] = bar.add_task(name, total=total)
                bar.update(tasks[name], completed=done, total=total)

            report = await do_train(
                state.sessions,
                state.settings,
                config=chosen,
                force=force,
                seed=seed,
                step=step,
            )
        if report.activated:
            await state.cache.incr(GLOBAL_GENERATION)
        return report

    report = run(main, batch_settings())
    console.print(f"embedded {report.embedded} items; {report.stats}")
    console.print(f"model version {report.version_id}: {report.reason}; metrics {report.metrics}")


@app.command()
def evaluate(
    output: Annotated[Path, typer.Option(help="Folder for report.json, report.md and plots.")],
    dataset: Annotated[str, typer.Option(help="Data set name (movielens).")] = "movielens",
    path: Annotated[Path | None, typer.Option(help="MovieLens folder; omit to download.")] = None,
    from_db: Annotated[bool, typer.Option("--from-db", help="Evaluate on the events in the database.")] = False,
    k: Annotated[str, typer.Option(help="Cut-offs, comma-separated.")] = "5,10,20",
    served: Annotated[
        bool,
        typer.Option(help="Also score the real service (SERVED row) on a scratch database of the training split."),
    ] = True,
) -> None:
    """Offline evaluation of our strategies against ALS, BPR, ItemKNN and EASE (temporal 80/20 split); writes
    the serving configuration it chose (serving.json) and, with --served, the SERVED row."""
    from app.ml.evaluation import ServedInput, eval_data_from_movielens, run_evaluation

    try:
        ks = tuple(sorted({int(x) for x in k.split(",") if x.strip()}))
    except ValueError:
        raise fail(f"--k must be comma-separated integers, got {k!r}") from None
    if not ks or min(ks) < 1:
        raise fail("--k needs at least one cut-off >= 1")
    if from_db:
        from app.services.evaluation_data import eval_data_from_db

        data, name = run(lambda state: eval_data_from_db(state.sessions)), "database"
    elif dataset == "movielens":
        from app.ml.datasets import load_movielens

        data, name = eval_data_from_movielens(load_movielens(movielens_path(path), progress=True)), "movielens"
    else:
        raise fail(f"--dataset must be movielens (or use --from-db), got {dataset!r}")

    def serve(inp: ServedInput) -> list[list[str]]:
        from app.services.served_evaluation import served_top

        return asyncio.run(served_top(batch_settings(), inp))

    report = run_evaluation(
        data, output, ks=ks, dataset=name, cache_dir=get_settings().data_dir / "cache", served=serve if served else None
    )
    results = report["results"]
    for model, metrics in results.items():
        console.print(
            f"{model:14s} ndcg@10={metrics.get('ndcg@10', 0):.4f} recall@10={metrics.get('recall@10', 0):.4f}"
        )
    console.print(f"wrote {output}/report.json, report.md and plots")


@app.command()
def demo(
    host: Annotated[str | None, typer.Option(help="Bind address.")] = None,
    port: Annotated[int | None, typer.Option(help="Port.")] = None,
    data: Annotated[Path | None, typer.Option(help="MovieLens folder (default RECENGINE_DEMO_DATA).")] = None,
) -> None:
    """Embedded database, migrate, import MovieLens, train, create an admin key, print examples, serve."""
    from app.demo import run_demo

    run_demo(host=host, port=port, data=data)
