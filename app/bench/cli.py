"""`recengine bench generate|run`: synthetic scale data and the benchmark report."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Annotated

import typer

from app.cli_support import console, database_errors, progress_bar
from app.config import Settings, get_settings

bench_app = typer.Typer(help="Synthetic scale data and benchmarks.", no_args_is_help=True)  # added by app.cli
DatabaseUrl = Annotated[str | None, typer.Option(help="Target database (default: the configured or embedded one).")]


def _target(settings: Settings, database_url: str | None) -> Settings:
    """The settings whose database a bench command talks to (for its error messages)."""
    return settings.model_copy(update={"database_url": database_url}) if database_url else settings


@bench_app.command("generate")
def generate(
    items: Annotated[int, typer.Option(min=10, help="Catalog size.")] = 10_000,
    users: Annotated[int | None, typer.Option(help="Users (default items/10, at least 500).")] = None,
    events: Annotated[int | None, typer.Option(help="Events (default 10 per item).")] = None,
    seed: Annotated[int, typer.Option(help="Random seed; same seed, same data.")] = 42,
    database_url: DatabaseUrl = None,
    train: Annotated[bool, typer.Option(help="Also fit ALS and activate it.")] = False,
) -> None:
    """Write a deterministic synthetic catalog and event log through COPY (replaces existing data)."""
    from app.bench import database, load, synth

    settings = get_settings()
    base = synth.default_spec(items, seed)
    spec = synth.Spec(items=items, users=users or base.users, events=events or base.events, seed=seed)
    with database_errors(_target(settings, database_url)), progress_bar() as bar:
        url = database.ensure(database.server_url(settings, database_url))
        task = bar.add_task("generate", total=None)

        def step(message: str) -> None:  # one step per table copied and index built
            bar.update(task, description=message, advance=1)

        report = asyncio.run(load.load(url, spec, fresh=True, progress=step))
        bar.update(task, total=bar.tasks[0].completed, description="generated")
    console.print_json(
        json.dumps({"rows": report.rows, "seconds": report.seconds, "index_seconds": report.index_seconds})
    )
    if train:
        from app.bench.runner import _train

        console.print_json(json.dumps(asyncio.run(_train(url, settings, spec, store=True)).__dict__))


@bench_app.command("run")
def run(
    output: Annotated[Path, typer.Option(help="Folder for bench.json, bench.md and plots.")] = Path("bench-out"),
    sizes: Annotated[str, typer.Option(help="Catalog sizes, comma separated (1000000 = 10M events).")] = (
        "10000,100000"
    ),
    database_url: Annotated[str | None, typer.Option(help="Server to use; one database per size is created.")] = None,
    seed: Annotated[int, typer.Option(help="Random seed of the data.")] = 42,
    fresh: Annotated[bool, typer.Option(help="Regenerate data even when the size's database holds it.")] = False,
    profile: Annotated[bool, typer.Option(help="Record the API server with py-spy (profile_<size>.svg).")] = False,
    quick: Annotated[bool, typer.Option(help="Fewer requests per measurement (smoke runs).")] = False,
    replicas: Annotated[
        bool,
        typer.Option(
            help="Instead: recommendations with retrieval on a streaming standby beside primary-only, replay lag "
            "and read-your-writes (first size only; a standby of the embedded server is made unless --replica-url)."
        ),
    ] = False,
    replica_url: Annotated[
        str | None, typer.Option(help="An existing standby of --database-url for --replicas.")
    ] = None,
) -> None:
    """Measure recommendations (GraphQL and raw SQL), recall, ingest, training, embedding, memory."""
    from app.bench.runner import Options
    from app.bench.runner import run as run_bench
    from app.bench.workload import Plan

    plan = (
        Plan(
            uncached_per_level=40,
            cached_per_level=200,
            cached_users=10,
            ingest_single=30,
            batches_100=3,
            batches_1000=1,
        )
        if quick
        else Plan()
    )
    if replicas:
        from app.bench import replicas as replica_bench

        replica_options = replica_bench.ReplicaOptions(
            output=output,
            size=int(sizes.split(",")[0]),
            seed=seed,
            database_url=database_url,
            replica_url=replica_url,
            plan=plan,
        )
        console.print(replica_bench.markdown(replica_bench.run(replica_options, say=lambda m: console.print(m))))
        console.print(f"wrote {output}/replicas.json and replicas.md")
        return
    options = Options(
        output=output,
        sizes=tuple(int(s) for s in sizes.split(",") if s.strip()),
        database_url=database_url,
        seed=seed,
        plan=plan,
        fresh=fresh,
        profile=profile,
        recorded_users=20 if quick else 60,
        recall_queries=20 if quick else 50,
        embed_texts=64 if quick else 500,
    )
    with database_errors(_target(get_settings(), database_url)):
        outcome = run_bench(options, say=lambda m: console.print(m))
    console.print((output / "bench.md").read_text())
    console.print(
        f"wrote {output}/bench.json, bench.md, latency_vs_size.png, rps_vs_size.png (peak RSS {outcome.rss_mb} MB)"
    )
