"""Flask CLI commands: `flask --app webapp <command>`."""

from __future__ import annotations

import signal
import threading
import time

import click
from flask import Flask, current_app
from sqlalchemy import select

from domain import operations
from domain.feed.fanout import rebuild_user_feed
from domain.insights import loads
from domain.media import events as media_events
from domain.segments import efforts as segment_efforts
from domain.segments import rematch
from domain.uploads import lifecycle
from models import User, db, migrate
from models.redis_store import redis_store
from webapp.auth import dev_token
from webapp.health_cli import register_health_cli
from webapp.metrics import QUEUES, broker_client


def register_cli(app: Flask) -> None:
    register_health_cli(app)

    @app.cli.command("dev-token")
    @click.argument("email")
    @click.option("--ttl", default=3600, show_default=True, help="Lifetime in seconds.")
    def dev_token_command(email: str, ttl: int) -> None:
        """Print a development ID token for EMAIL (emulator mode only); nothing else goes to stdout."""
        if not current_app.config["FIREBASE_AUTH_EMULATOR_HOST"]:
            raise click.ClickException(
                "dev tokens only work in Firebase emulator mode (FIREBASE_AUTH_EMULATOR_HOST), which `make run` "
                "turns on for itself: run this while it is going (the command reads .data/stack.env), or set "
                "FIREBASE_AUTH_EMULATOR_HOST=127.0.0.1:9099 for a server you started yourself on 127.0.0.1")
        click.echo(dev_token(email, current_app.config["FIREBASE_PROJECT_ID"], ttl_s=ttl))

    @app.cli.command("media-events")
    @click.option("--wait", default=20, show_default=True, help="Long-poll seconds per receive.")
    def media_events_command(wait: int) -> None:
        """Consume the media events queue (S3 object-created, MediaConvert job state) until stopped."""
        queue_url = current_app.config["MEDIA_EVENTS_QUEUE_URL"]
        if not queue_url:
            raise click.ClickException("MEDIA_EVENTS_QUEUE_URL is not set")
        stopping = threading.Event()
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, lambda *_: stopping.set())
        click.echo(f"consuming media events from {queue_url}", err=True)
        media_events.run(queue_url, stop=stopping.is_set, wait_s=wait)

    @app.cli.command("db-upgrade")
    @click.argument("revision", default="head")
    def db_upgrade(revision: str) -> None:
        """Apply migrations (the release step)."""
        migrate.upgrade(current_app.config["DATABASE_URL"], revision)
        click.echo(f"database at {revision}", err=True)

    @app.cli.command("db-check")
    def db_check() -> None:
        """Fail when the models and the migrations disagree."""
        diffs = migrate.drift(current_app.config["DATABASE_URL"])
        if diffs:
            raise click.ClickException("models and migrations differ:\n" + "\n".join(map(str, diffs)))
        click.echo("models and migrations agree", err=True)

    @app.cli.command("leaderboards-rebuild")
    @click.option("--segment", "segment_ids", type=int, multiple=True, help="Only these segments (repeatable).")
    def leaderboards_rebuild(segment_ids: tuple[int, ...]) -> None:
        """Rebuild segment leaderboards in Redis from PostgreSQL (all segments by default)."""
        started = time.perf_counter()
        if segment_ids:
            count = rematch.rebuild_boards(segment_ids)
        else:
            count = rematch.rebuild_every_board()
        click.echo(f"rebuilt the boards of {count} segments in {time.perf_counter() - started:.1f} s", err=True)

    @app.cli.command("segments-prepare")
    def segments_prepare() -> None:
        """Store the matcher's prepared geometry on segments that lack it (or hold one from an older version)."""
        started = time.perf_counter()
        count = segment_efforts.store_prepared()
        click.echo(f"prepared {count} segments in {time.perf_counter() - started:.1f} s", err=True)

    @app.cli.command("feed-rebuild")
    @click.option("--user", "user_ids", type=int, multiple=True, help="Only these athletes (repeatable).")
    def feed_rebuild(user_ids: tuple[int, ...]) -> None:
        """Rebuild home feeds in Redis from PostgreSQL (only feeds already built, unless --user is given)."""
        if not user_ids:
            # Feeds are built lazily for the athletes who read them; rebuilding all accounts would fill Redis
            # with feeds nobody opens. A feed that was lost entirely is rebuilt by its owner's next read.
            built = {int(k.rsplit(b":", 1)[1]) for k in redis_store.client.scan_iter(match="feed:built:*")}
            user_ids = tuple(uid for uid in db.session.scalars(select(User.id)) if uid in built)
        for user_id in user_ids:
            rebuild_user_feed(user_id)
        click.echo(f"rebuilt {len(user_ids)} feeds", err=True)

    @app.cli.command("insights-rebuild")
    @click.option("--user", "user_ids", type=int, multiple=True, help="Only these athletes (repeatable).")
    def insights_rebuild(user_ids: tuple[int, ...]) -> None:
        """Recompute every activity's training load and the daily fitness series from the activities."""
        started = time.perf_counter()
        ids = user_ids or tuple(db.session.scalars(select(User.id).order_by(User.id)))
        activities = 0
        for user_id in ids:
            activities += loads.rebuild(user_id)
            db.session.commit()
        click.echo(f"rebuilt the loads of {activities} activities of {len(ids)} athletes in "
                   f"{time.perf_counter() - started:.1f} s", err=True)

    @app.cli.command("doctor")
    @click.option("--sample", default=50, show_default=True, help="Built feeds and segments to compare.")
    @click.option("--repair", is_flag=True, help="Rebuild what disagrees and re-send stuck uploads.")
    def doctor(sample: int, repair: bool) -> None:
        """Check migrations, the broker, Redis caches against PostgreSQL (samples) and stuck uploads."""
        cfg = current_app.config
        current, heads = migrate.revisions(cfg["DATABASE_URL"])
        problems = 0
        if current == heads:
            click.echo(f"ok    migrations at {', '.join(sorted(heads))}")
        else:
            problems += 1
            click.echo(f"FAIL  migrations: database at {sorted(current) or 'nothing'}, code at {sorted(heads)}; "
                       f"run `flask --app webapp db-upgrade` (never repaired here: a release step)")
        try:
            depths = operations.queue_depths(broker_client(current_app), QUEUES)
            click.echo("ok    broker: " + ", ".join(f"{q} {n}" for q, n in depths.items()))
        except Exception as exc:
            problems += 1
            click.echo(f"FAIL  broker unreachable ({type(exc).__name__}): tasks wait in PostgreSQL (uploads "
                       f"`queued`, pushes pending) and the sweepers send them once it is back")
        findings = operations.Findings()
        operations.check_caches(sample, sample, findings)
        findings.stuck = operations.stuck_uploads(cfg["UPLOAD_SWEEP_AFTER_S"], cfg["UPLOAD_STALE_PROCESSING_S"])
        for line in findings.problems:
            click.echo(f"FAIL  {line}")
        if findings.feeds_to_rebuild:
            click.echo("      would rebuild feeds: flask --app webapp feed-rebuild "
                       + " ".join(f"--user {u}" for u in findings.feeds_to_rebuild))
        if findings.boards_to_rebuild:
            click.echo("      would rebuild boards: flask --app webapp leaderboards-rebuild "
                       + " ".join(f"--segment {s}" for s in findings.boards_to_rebuild))
        if findings.stuck:
            click.echo(f"FAIL  {len(findings.stuck)} stuck uploads: "
                       + ", ".join(f"{i} ({s})" for i, s in findings.stuck[:20]))
            click.echo("      would re-send them (the beat's sweep-stuck-uploads does so every minute)")
        if not (findings.problems or findings.stuck):
            click.echo("ok    caches: sampled feeds and boards agree with PostgreSQL; no stuck uploads")
        problems += len(findings.problems) + len(findings.stuck)
        if repair and (findings.problems or findings.stuck):
            for user_id in findings.feeds_to_rebuild:
                rebuild_user_feed(user_id)
            rematch.rebuild_boards(findings.boards_to_rebuild)
            resent = lifecycle.sweep_stuck(cfg["UPLOAD_SWEEP_AFTER_S"], cfg["UPLOAD_STALE_PROCESSING_S"])
            click.echo(f"repaired: {len(findings.feeds_to_rebuild)} feeds, {len(findings.boards_to_rebuild)} "
                       f"segments' boards rebuilt; {resent} uploads re-sent")
            problems = 0 if current == heads else 1
        if problems:
            raise SystemExit(1)
