"""Online-loop commands of the CLI: experiment reports and batch export of recommendations."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from app.cli_support import batch_settings, console, fail, progress_bar, run

experiment_app = typer.Typer(help="A/B experiments: reports.", no_args_is_help=True)
export_app = typer.Typer(help="Batch exports.", no_args_is_help=True)


def _number(value: float | None, digits: int = 4) -> str:
    return "" if value is None else f"{value:.{digits}f}"


@experiment_app.command("report")
def experiment_report(
    name: Annotated[str, typer.Argument(help="The experiment.")],
    since: Annotated[
        datetime | None, typer.Option(help="Count lists served from this time (default: the experiment's start).")
    ] = None,
) -> None:
    """CTR per arm, and a two-proportion z-test of each arm's CTR against the first arm's."""
    from app.errors import AppError
    from app.services.experiment_report import experiment_report as build

    async def main(state: Any) -> Any:
        async with state.sessions() as session:
            return await build(session, name=name, since=since)

    try:
        experiment, arms = run(main)
    except AppError as exc:
        raise fail(exc.message) from None
    table = Table(
        "arm", "strategy", "model", "traffic", "impressions", "users", "clicks", "CTR", "conv.", "z", "p-value"
    )
    for spec, arm in zip(experiment.arms, arms, strict=True):
        s = arm.stats
        table.add_row(
            arm.arm,
            spec.strategy.value,
            str(spec.model_version or "active"),
            f"{spec.traffic:g}",
            str(s.impressions if s else 0),
            str(s.users if s else 0),
            str(s.clicks if s else 0),
            _number(s.ctr if s else 0.0),
            str(s.conversions if s else 0),
            _number(arm.z, 3),
            _number(arm.p_value),
        )
    state = "running" if experiment.active else "stopped"
    console.print(f"experiment [bold]{experiment.name}[/bold] ({state}); p-values compare each arm with the first")
    console.print(table)


@export_app.command("recommendations")
def export_recommendations(
    output: Annotated[Path, typer.Option(help="JSON-lines file; users already in it are skipped (resume).")],
    users: Annotated[
        Path | None, typer.Option(help="File of user ids, one a line (default: every user).", exists=True)
    ] = None,
    count: Annotated[int, typer.Option(help="Items per user.")] = 20,
    strategy: Annotated[
        str, typer.Option(help="hybrid, collaborative, content_based, popular or trending.")
    ] = "hybrid",
    placement: Annotated[str | None, typer.Option(help="Placement recorded with the impressions.")] = None,
) -> None:
    """Every user's recommendations as one JSON line each, through the API's serving code."""
    from app.services import export, serving
    from app.services.request import Strategy

    try:
        chosen = Strategy(strategy.lower())
    except ValueError:
        raise fail(f"--strategy must be one of {', '.join(s.value for s in Strategy)}") from None
    ids, invalid = export.read_user_file(users) if users else ([], [])
    for line, message in invalid[:20]:
        console.print(f"[yellow]line {line}:[/yellow] {message}")

    async def main(state: Any) -> export.ExportReport:
        serve = serving.Serving(state.recommender, state.impressions, state.experiments)
        wanted = ids if users else await export.all_user_ids(serve)
        with progress_bar() as bar:
            task = bar.add_task("users", total=len(wanted))
            return await export.export_recommendations(
                serve,
                output=output,
                users=wanted,
                count=count,
                strategy=chosen,
                placement=placement,
                progress=lambda n: bar.advance(task, n),
            )

    from app.errors import AppError

    try:
        report = run(main, batch_settings())
    except AppError as exc:
        raise fail(exc.message) from None
    console.print(
        f"exported {report.exported} users to {output} ({report.skipped} already there) in {report.seconds:.1f}s: "
        f"{report.users_per_second:.1f} users/s"
    )
