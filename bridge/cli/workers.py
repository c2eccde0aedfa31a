"""`bridge worker` and `bridge beat`: the Celery mode (the optional clearhours[celery] extra)."""

from __future__ import annotations

import logging
import os
import socket
from pathlib import Path

import click

from bridge.cli.base import Env, cli, exit_scheduler, handle_errors, pass_env
from bridge.cli.operate import _run_jobs


@cli.command()
@click.option("--concurrency", type=click.IntRange(1, 64), default=None,
              help="Tasks this worker runs at once (default: [workers] concurrency).")
@pass_env
@handle_errors
def worker(env: Env, concurrency: int | None) -> None:
    """Run syncs, publishes and alerts queued by `bridge beat`, until stopped.

    For deployments that outgrow one `bridge run` process: start any number of workers,
    on any number of machines, with the same config file; they share the work through
    the broker in `[workers] broker_url` (Redis or RabbitMQ). Each source is synced by
    one worker at a time (the same per-source lock as `bridge run`), each portal
    published by one at a time. A worker that dies gives its tasks back: another worker
    runs them (RabbitMQ at once, Redis after `visibility_timeout`). SIGTERM finishes the
    running tasks, then exits 0. Needs: pip install 'clearhours[celery]'.

    \b
    Example:
      bridge worker --concurrency 8
    """
    from bridge.scheduler import RunContext
    from bridge.workers import WorkerPresence, make_app, register_tasks, run_worker

    cfg = env.config
    app = make_app(cfg)
    jobs = _run_jobs(env, publish=True)
    register_tasks(app, RunContext(cfg, env.store, jobs))
    presence = WorkerPresence(env.store, cfg)
    presence.start()
    click.echo(f"bridge worker: {presence.heartbeat.label}, queue {cfg.workers.queue!r}; SIGTERM stops.", err=True)
    try:
        level = logging.getLevelName(logging.getLogger().getEffectiveLevel())
        run_worker(app, concurrency=concurrency or cfg.workers.concurrency, queue=cfg.workers.queue,
                   name=f"clearhours-{os.getpid()}@{socket.gethostname()}", loglevel=str(level))
    finally:
        jobs.stop.set()
        presence.stop()


@cli.command()
@click.option("--no-publish", is_flag=True, help="Queue only syncs; no publishes or link refreshes.")
@pass_env
@handle_errors
def beat(env: Env, no_publish: bool) -> None:
    """Queue each source's sync on its schedule, and the publishes and link refreshes, for `bridge worker`.

    The schedule of `bridge run`, with the work done by the workers. Like `bridge run`,
    one beat process leads and others wait as standbys (the same leader lock: never run
    `bridge run` and `bridge beat` on one store, the first to start leads and the other
    waits). A sync not started within its interval is dropped, so a backlog never turns
    into several syncs of one source. Exits 3 if its scheduler dies or stalls.

    \b
    Example:
      bridge beat -v
    """
    from bridge.scheduler import run_scheduler
    from bridge.workers import beat_jobs, make_app

    cfg = env.config
    app = make_app(cfg)
    jobs = beat_jobs(app, cfg)
    if no_publish:
        jobs.publish = jobs.refresh = None
    path = str(Path(env.config_path).resolve())

    def leading() -> None:
        click.echo(f"bridge beat: leading: queueing {len(cfg.sources)} source(s), {len(cfg.clients)} portal(s) "
                   f"on {cfg.workers.queue!r}; Ctrl-C or SIGTERM stops.", err=True)

    click.echo("bridge beat: waiting for the leader lock (a standby until the current leader stops)", err=True)
    exit_scheduler(run_scheduler(cfg, env.store, jobs, config_path=path, mode="beat",
                                 publish_on_start=not no_publish, on_leader=leading))
