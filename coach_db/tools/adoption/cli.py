"""The `coach-db adopt` command: print the plan, or convert."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape

from coach_db.config import database_url, mask_url
from coach_db.tools.adoption.convert import AdoptRefused, adopt, dry_run
from coach_db.tools.adoption.plan import Plan

out = Console(soft_wrap=True, highlight=False)


def print_plan(plan: Plan, show: int) -> None:
    """What was recognised, the counts, and each invariant finding (first `show` ids)."""
    if plan.refusal:
        out.print(f"[red]Refused:[/] {escape(plan.refusal)}")
        return
    if plan.history:
        last = plan.history[-1]
        out.print(
            f"Prisma migration history: {len(plan.history)} migrations in _prisma_migrations, "
            f"the last {escape(last['migration_name'])} (finished {last['finished_at']})."
        )
    out.print("Recognised tables and columns:")
    for table, columns in plan.columns.items():
        described = ", ".join(f"{c.name} {c.enum or c.type}" for c in columns.values())
        out.print(f"  {table} ({plan.counts.get(table, '?'):,} rows): {escape(described)}")
    for variant in plan.variants:
        out.print(f"  variant: {escape(variant)}")
    if not plan.findings:
        out.print("[green]Every row meets coach-db's invariants.[/]")
    if plan.findings:
        out.print("Rows breaking a coach-db invariant:")
    for f in plan.findings:
        shown = ", ".join(map(str, f.ids[:show])) + (" …" if f.count > len(f.ids[:show]) else "")
        verdict = "[red]refused[/]" if f.refuses else "[yellow]fixed[/]"
        out.print(
            f"  {verdict} {f.table}: {f.count:,} rows, {escape(f.problem)} (ids {shown})\n"
            f"      → {escape(f.action)}"
        )


def register(app: typer.Typer, friendly: Callable[[Any], Any]) -> None:
    @app.command("adopt")
    @friendly
    def adopt_command(
        dry: Annotated[
            bool, typer.Option("--dry-run", help="Print the plan; change nothing.")
        ] = False,
        yes: Annotated[bool, typer.Option("--yes", "-y", help="Convert (required).")] = False,
        keep_prisma_data: Annotated[
            bool,
            typer.Option(
                "--keep-prisma-data",
                help="Keep the Prisma tables' rows in schema prisma_archive too (twice the "
                "disk); by default only _prisma_migrations is kept there.",
            ),
        ] = False,
        show: Annotated[int, typer.Option(help="Ids shown per problem.", min=1)] = 10,
    ) -> None:
        """Bring a database made by the Prisma package under coach-db (exit 0: adoptable/done)."""
        url = database_url()
        out.print(f"Database {mask_url(url)}")
        if dry or not yes:
            plan = asyncio.run(dry_run(url, show))
            print_plan(plan, show)
            if not plan.ok:
                out.print("[red]Adoption cannot proceed:[/] fix what is marked refuse, then run "
                          "the dry run again.")  # fmt: skip
                raise typer.Exit(1)
            out.print("[green]Adoption can proceed:[/] back up, then `coach-db adopt --yes`.")
            return
        started = time.monotonic()
        try:
            done = asyncio.run(adopt(url, show, keep_data=keep_prisma_data))
        except AdoptRefused as exc:
            if exc.plan is not None:
                print_plan(exc.plan, show)
            raise
        print_plan(done.plan, show)
        rows = ", ".join(f"{n:,} {t}" for t, n in done.rows.items())
        out.print(
            f"[green]Adopted[/] in {time.monotonic() - started:.1f} s: {rows}. The Prisma "
            "history is in prisma_archive._prisma_migrations. Next: deploy the Python services."
        )
