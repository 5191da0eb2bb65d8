"""Locust's own distributed mode: a master and workers, on this machine or across machines.

Local workers are started here (`--workers N`); remote ones (`--role worker`) connect to a
master started with `--role master`, which sends them the target and the pacing settings once
each is ready, so workers started at different times share one schedule. Each worker records to
its own file; a remote one sends its records to the master once it has stopped (no folder shared
between machines), and the master merges them all at the end.
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import ctypes
import json
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import gevent
from locust import events
from locust.env import Environment
from locust.runners import STATE_STOPPED

from harness.load.records import FIELDS, Recorder, merge
from harness.load.user import ChatUser, Settings, configure, drain

LOOPBACK = "127.0.0.1"


def _die_with_parent() -> None:
    """Local workers get SIGTERM when the master dies, even by SIGKILL (Linux prctl)."""
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


READY_MESSAGE = "chaos_worker_ready"
SETTINGS_MESSAGE = "chaos_settings"
RECORDS_MESSAGE = "chaos_records"
"""A remote worker's records, a chunk at a time, the last chunk marked."""
CHUNK = 500


def run_worker(args: argparse.Namespace) -> int:
    """A Locust worker: paces its share of users, drains on stop, records to its own file."""
    configure(args)
    recorder = Recorder(args.records)
    events.request.add_listener(recorder.on_request)
    events.test_stopping.add_listener(lambda **kwargs: drain(args.request_timeout + 1))
    environment = Environment(user_classes=[ChatUser], events=events, host=args.host)
    runner = environment.create_worker_runner(LOOPBACK, args.worker_of)
    runner.greenlet.join()
    recorder.close()
    return 0


def run_remote_worker(args: argparse.Namespace) -> int:
    """A worker in another container or machine: takes the target and the schedule from the
    master, records to `--records` locally, and sends those records to the master once stopped."""
    configure(args)
    environment = Environment(user_classes=[ChatUser], events=events, host=args.host)
    runner = environment.create_worker_runner(args.master_host, args.master_port)

    def apply_settings(msg: Any, **kwargs: Any) -> None:
        settings = dict(msg.data)
        environment.host = settings.pop("host", environment.host)  # users spawn after this
        for name, value in settings.items():
            setattr(Settings, name, value)

    runner.register_message(SETTINGS_MESSAGE, apply_settings)
    recorder = Recorder(args.records)
    events.request.add_listener(recorder.on_request)
    events.test_stopping.add_listener(lambda **kwargs: drain(Settings.request_timeout + 1))
    sent: list[bool] = []

    def send_records(**kwargs: Any) -> None:
        if not sent:  # once, though a quit after the stop fires test_stop again
            sent.append(True)
            _send_records(runner, args.records)

    events.test_stop.add_listener(send_records)
    runner.send_message(READY_MESSAGE)  # the handler is registered: the master may send settings now
    runner.greenlet.join()
    recorder.close()
    return 0


def _send_records(runner: Any, path: Path) -> None:
    with path.open(encoding="utf-8", newline="") as handle:
        rows = list(csv.DictReader(handle))
    for start in range(0, len(rows), CHUNK):
        runner.send_message(RECORDS_MESSAGE, {"rows": rows[start : start + CHUNK], "last": False})
    runner.send_message(RECORDS_MESSAGE, {"rows": [], "last": True})


class _Received:
    """The records remote workers send, per worker, and which have sent their last chunk."""

    def __init__(self) -> None:
        self.rows: dict[str, list[dict[str, str]]] = {}
        self.finished: set[str] = set()

    def on_message(self, msg: Any, **kwargs: Any) -> None:
        self.rows.setdefault(msg.node_id, []).extend(msg.data["rows"])
        if msg.data["last"]:
            self.finished.add(msg.node_id)

    def write(self, records: Path, node_id: str) -> Path:
        path = _remote_records(records, node_id)
        with path.open("w", encoding="utf-8", newline="") as handle:
            writer = csv.DictWriter(handle, FIELDS)
            writer.writeheader()
            writer.writerows(self.rows.get(node_id, []))
        return path


def _remote_records(records: Path, node_id: str) -> Path:
    return records.with_name(f"{records.name}.worker-{node_id}")


def _settings() -> dict[str, Any]:
    names = ["rate", "users", "stream_share", "tool_share", "model", "request_timeout", "seed", "t0"]
    names += ["stop_sending_at", "headers"]
    return {name: getattr(Settings, name) for name in names}


def run_master(args: argparse.Namespace) -> int:
    """Locust's own distributed mode: a master and `--workers` worker processes (started here,
    or with `--role master` started elsewhere and waited for)."""
    configure(args)
    environment = Environment(user_classes=[ChatUser], events=events, host=args.host)
    remote = args.role == "master"
    port = args.master_port
    runner = environment.create_master_runner(args.master_host if remote else LOOPBACK, port)
    ready: list[str] = []
    runner.register_message(READY_MESSAGE, lambda msg, **kwargs: ready.append(msg.node_id))
    received = _Received()
    runner.register_message(RECORDS_MESSAGE, received.on_message)
    worker_files = [args.records.with_name(f"{args.records.name}.worker{i}") for i in range(args.workers)]
    shared = [
        "--host",
        args.host,
        "--rate",
        str(args.rate),
        "--users",
        str(args.users),
        "--duration",
        str(args.duration),
        "--stream-share",
        str(args.stream_share),
        "--tool-share",
        str(args.tool_share),
        "--model",
        args.model,
        "--request-timeout",
        str(args.request_timeout),
        "--seed",
        str(args.seed),
        "--t0",
        str(Settings.t0),
        *(part for text in args.header for part in ("--header", text)),
    ]
    workers = [
        subprocess.Popen(
            [sys.executable, "-m", "harness.load", *shared, "--worker-of", str(port), "--records", str(path)],
            preexec_fn=_die_with_parent if sys.platform == "linux" else None,
        )
        for path in worker_files
        if not remote
    ]
    connected = (lambda: len(ready)) if remote else (lambda: runner.worker_count)
    try:
        until = time.time() + (120 if remote else 30)
        while connected() < args.workers and time.time() < until:
            gevent.sleep(0.1)
        if connected() < args.workers:
            raise SystemExit(f"only {connected()} of {args.workers} Locust workers connected")
        if remote:
            if not args.t0:  # the schedule starts now that every worker is here, not at our start
                Settings.t0 = time.time() + 1.0
                Settings.stop_sending_at = Settings.t0 + args.duration
            # The master's target, clock and pacing win: workers started at other times, on
            # other machines, share one schedule.
            runner.send_message(SETTINGS_MESSAGE, {**_settings(), "host": args.host})
        runner.start(args.users, spawn_rate=min(100, args.users))
        gevent.sleep(max(0.0, Settings.stop_sending_at - time.time()))
        runner.stop()  # workers drain what is in flight (test_stopping), then report stopped
        until = time.time() + args.request_timeout + 5
        while runner.state != STATE_STOPPED and time.time() < until:
            gevent.sleep(0.1)
        while remote and not received.finished >= set(ready) and time.time() < until:
            gevent.sleep(0.1)  # each remote worker's records, sent once it stopped
        gevent.sleep(3.5)  # one more stats cycle from every worker before quitting
        runner.quit()
        for worker in workers:
            worker.wait(timeout=30)
    finally:
        for worker in workers:
            if worker.poll() is None:
                worker.kill()
    if remote:
        worker_files = [received.write(args.records, node_id) for node_id in ready]
    rows = merge(worker_files, args.records)
    total = environment.stats.total.num_requests
    summary = {
        "locust_requests": total,
        "locust_failures": environment.stats.total.num_failures,
        "records": rows,
        "total": total,
        "workers": args.workers,
    }
    if remote:
        summary["workers_reported"] = len(received.finished & set(ready))
    if args.summary:
        args.summary.write_text(json.dumps(summary))
    print(json.dumps(summary), flush=True)
    return 0
