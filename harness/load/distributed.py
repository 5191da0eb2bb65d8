"""Locust's own distributed mode: a master and workers, on this machine or across machines.

Local workers are started here (`--workers N`); remote ones (`--role worker`) connect to a
master started with `--role master`, which sends them the pacing settings once each is ready,
so workers started at different times share one schedule. Each worker records to its own file;
the master merges them at the end.
"""

from __future__ import annotations

import argparse
import contextlib
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

from harness.load.records import Recorder, merge
from harness.load.user import ChatUser, Settings, configure, drain

LOOPBACK = "127.0.0.1"


def _die_with_parent() -> None:
    """Local workers get SIGTERM when the master dies, even by SIGKILL (Linux prctl)."""
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


READY_MESSAGE = "chaos_worker_ready"
SETTINGS_MESSAGE = "chaos_settings"


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
    """A worker in another container or machine: records to its own file beside `--records`."""
    configure(args)
    environment = Environment(user_classes=[ChatUser], events=events, host=args.host)
    runner = environment.create_worker_runner(args.master_host, args.master_port)
    runner.register_message(SETTINGS_MESSAGE, _apply_settings)
    recorder = Recorder(_remote_records(args.records, runner.client_id))
    events.request.add_listener(recorder.on_request)
    events.test_stopping.add_listener(lambda **kwargs: drain(Settings.request_timeout + 1))
    runner.send_message(READY_MESSAGE)  # the handler is registered: the master may send settings now
    runner.greenlet.join()
    recorder.close()
    return 0


def _remote_records(records: Path, node_id: str) -> Path:
    return records.with_name(f"{records.name}.worker-{node_id}")


def _apply_settings(msg: Any, **kwargs: Any) -> None:
    """The master's clock and pacing win: workers started at other times must share one schedule."""
    for name, value in msg.data.items():
        setattr(Settings, name, value)


def _settings() -> dict[str, Any]:
    names = ["rate", "users", "stream_share", "tool_share", "model", "request_timeout", "seed", "t0"]
    names.append("stop_sending_at")
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
            runner.send_message(SETTINGS_MESSAGE, _settings())
            worker_files = [_remote_records(args.records, node_id) for node_id in ready]
        runner.start(args.users, spawn_rate=min(100, args.users))
        gevent.sleep(max(0.0, Settings.stop_sending_at - time.time()))
        runner.stop()  # workers drain what is in flight (test_stopping), then report stopped
        until = time.time() + args.request_timeout + 5
        while runner.state != STATE_STOPPED and time.time() < until:
            gevent.sleep(0.1)
        gevent.sleep(3.5)  # one more stats cycle from every worker before quitting
        runner.quit()
        for worker in workers:
            worker.wait(timeout=30)
    finally:
        for worker in workers:
            if worker.poll() is None:
                worker.kill()
    rows = merge(worker_files, args.records)
    total = environment.stats.total.num_requests
    summary = {
        "locust_requests": total,
        "locust_failures": environment.stats.total.num_failures,
        "records": rows,
        "total": total,
        "workers": args.workers,
    }
    if args.summary:
        args.summary.write_text(json.dumps(summary))
    print(json.dumps(summary), flush=True)
    return 0
