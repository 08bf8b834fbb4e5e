"""Health commands: `flask --app webapp foods-import`, `dev-clock set|reset|show`, `hydration-remind`."""

from __future__ import annotations

import gzip
from datetime import datetime
from pathlib import Path

import click
from flask import Flask

from domain import clock
from domain.errors import Refusal
from domain.health import foods, hydration
from domain.health_sync import export_import
from models import User, db


def register_health_cli(app: Flask) -> None:
    @app.cli.command("foods-import")
    @click.option("--off", "off_csv", type=click.Path(exists=True, dir_okay=False, path_type=Path),
                  help="An Open Food Facts CSV export (tab-separated, optionally gzipped).")
    @click.option("--fdc", "fdc_dir", type=click.Path(exists=True, file_okay=False, path_type=Path),
                  help="A FoodData Central CSV download (the folder with food.csv, food_nutrient.csv…).")
    @click.option("--force", is_flag=True, help="Load the shipped catalogue even if it is there already.")
    def foods_import(off_csv: Path | None, fdc_dir: Path | None, force: bool) -> None:
        """Load the shipped food catalogue (once; `make run` runs this), or a production catalogue dump."""
        if off_csv is not None:
            with foods.open_text(off_csv) as fh:
                click.echo(f"added {foods.import_open_food_facts(fh)} Open Food Facts products", err=True)
        if fdc_dir is not None:
            click.echo(f"added {foods.import_fooddata_central(fdc_dir)} FoodData Central foods", err=True)
        if off_csv is None and fdc_dir is None:
            if foods.catalogue_size("sr28") and not force:
                click.echo("the food catalogue is loaded already", err=True)
                return
            click.echo(f"added {foods.import_catalogue()} foods from the shipped catalogue", err=True)

    @app.cli.group("dev-clock")
    def dev_clock() -> None:
        """The development clock that beat jobs and reminders read as "now" (development and testing only)."""

    @dev_clock.command("set")
    @click.argument("moment")
    def dev_clock_set(moment: str) -> None:
        """Make "now" MOMENT (ISO 8601 with its offset, e.g. 2026-12-05T07:00:00+09:00); the clock runs on."""
        try:
            parsed = datetime.fromisoformat(moment.replace("Z", "+00:00"))
        except ValueError as exc:
            raise click.BadParameter("not an ISO 8601 time", param_hint="MOMENT") from exc
        try:
            shift = clock.set_now(parsed)
        except Refusal as exc:
            raise click.ClickException(exc.message) from exc
        click.echo(f"now is {clock.now().isoformat()} (offset {shift:+.0f} s)", err=True)

    @dev_clock.command("reset")
    def dev_clock_reset() -> None:
        """Back to the real time."""
        try:
            clock.reset()
        except Refusal as exc:
            raise click.ClickException(exc.message) from exc
        click.echo(f"now is {clock.now().isoformat()} (real time)", err=True)

    @dev_clock.command("show")
    def dev_clock_show() -> None:
        """Print "now" as scheduled work sees it."""
        click.echo(clock.now().isoformat())

    @app.cli.command("health-import-export")
    @click.argument("path", type=click.Path(exists=True, dir_okay=False, path_type=Path))
    @click.option("--user", "user_id", type=int, required=True, help="The athlete's id.")
    def health_import_export(path: Path, user_id: int) -> None:
        """Import the health records of an Apple Health export.xml (any size: read as a stream)."""
        user = db.session.get(User, user_id)
        if user is None:
            raise click.ClickException(f"no athlete {user_id}")
        opener = gzip.open if path.suffix == ".gz" else open
        with opener(path, "rb") as stream:
            click.echo(export_import.summary(export_import.import_export(user, stream)), err=True)

    @app.cli.command("hydration-remind")
    def hydration_remind() -> None:
        """Run one pass of the hydration reminders now (the beat job does this every minute)."""
        click.echo(f"sent {hydration.send_reminders()} reminders", err=True)
