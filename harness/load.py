"""Locust load, in its own process: the only module that imports locust (and so gevent).

Open-loop pacing: each user sends on a fixed schedule (rate / users per second) and every
request runs in its own greenlet, so the offered rate does not drop when latency rises. Every
request is recorded to a CSV file as it completes (flushed per row), one row per Locust request
event, so the record count equals Locust's own total.

Run: `python -m harness.load --host URL --rate 50 --duration 20 --records records.csv`.
Across containers or machines: one `--role master --workers N --master-host 0.0.0.0` and N
`--role worker --master-host MASTER`, sharing the records folder; the master sends the pacing
settings to each worker once it is ready, then merges their record files.
"""

from __future__ import annotations

import argparse
import csv
import json
import random
import time
from pathlib import Path
from typing import Any, TextIO

import gevent
from locust import HttpUser, constant, events, task
from locust.env import Environment
from requests.adapters import HTTPAdapter

FIELDS = [
    "t",
    "latency_ms",
    "ttft_ms",
    "status",
    "ok",
    "error_kind",
    "served_by",
    "attempts",
    "degraded",
    "stream",
    "user",
    "finish_reason",
]
LOOPBACK = "127.0.0.1"
MAX_IN_FLIGHT_PER_USER = 500
READY_MESSAGE = "chaos_worker_ready"
SETTINGS_MESSAGE = "chaos_settings"
IN_FLIGHT: set[gevent.Greenlet] = set()
"""Every request greenlet not yet finished, across users (gevent: one thread, no locks)."""


class Settings:
    """Filled from the command line before the users start (locust users take no arguments)."""

    rate = 10.0
    users = 1
    stream_share = 0.0
    model = "chat"
    request_timeout = 30.0
    t0 = 0.0
    seed = 1
    stop_sending_at = 0.0


class Recorder:
    """Writes one CSV row per request event, flushed at once so a crash loses nothing written."""

    def __init__(self, path: Path) -> None:
        self.file: TextIO = path.open("w", newline="", encoding="utf-8")
        self.writer = csv.DictWriter(self.file, FIELDS)
        self.writer.writeheader()
        self.file.flush()
        self.rows = 0

    def on_request(self, context: dict[str, Any] | None = None, exception: Any = None, **kwargs: Any) -> None:
        row = dict(context or {})
        row.setdefault("ok", exception is None)
        row.setdefault("error_kind", "" if exception is None else type(exception).__name__)
        self.writer.writerow({k: row.get(k, "") for k in FIELDS})
        self.file.flush()
        self.rows += 1

    def close(self) -> None:
        self.file.close()


def _error_kind(status: int, exc: BaseException | None) -> str:
    if exc is not None:
        name = type(exc).__name__.lower()
        return "timeout" if "timeout" in name else "connection"
    return f"http_{status}"


class ChatUser(HttpUser):
    """Posts chat completions on a fixed schedule, each in its own greenlet."""

    wait_time = constant(0)

    def on_start(self) -> None:
        adapter = HTTPAdapter(pool_connections=4, pool_maxsize=MAX_IN_FLIGHT_PER_USER)
        self.client.mount("http://", adapter)
        local = ChatUser.count = getattr(ChatUser, "count", -1) + 1
        worker = getattr(self.environment.runner, "worker_index", 0) or 0
        self.index = worker * Settings.users + local
        self.rng = random.Random(Settings.seed * 7919 + self.index)
        self.interval = Settings.users / Settings.rate
        self.next_at = Settings.t0 + self.interval * self.index / Settings.users
        self.in_flight: set[gevent.Greenlet] = set()
        self.done = False

    @task
    def paced(self) -> None:
        if self.next_at >= Settings.stop_sending_at:
            gevent.sleep(0.2)  # the main greenlet drains what is in flight, then quits
            return
        now = time.time()
        if now < self.next_at:
            gevent.sleep(self.next_at - now)
        self.next_at += self.interval
        stream = self.rng.random() < Settings.stream_share
        if len(self.in_flight) >= MAX_IN_FLIGHT_PER_USER:
            self._report_overload(stream)
            return
        greenlet = gevent.spawn(self._one, stream)
        self.in_flight.add(greenlet)
        IN_FLIGHT.add(greenlet)
        greenlet.link(self.in_flight.discard)
        greenlet.link(IN_FLIGHT.discard)

    def _report_overload(self, stream: bool) -> None:
        context = {
            "t": round(time.time() - Settings.t0, 6),
            "ok": False,
            "error_kind": "client_overload",
            "stream": stream,
            "user": self.index,
        }
        self.environment.events.request.fire(
            request_type="POST",
            name="chat",
            response_time=0,
            response_length=0,
            response=None,
            context=context,
            exception=RuntimeError("client overload"),
            start_time=time.time(),
            url="",
        )

    def _one(self, stream: bool) -> None:
        body = {
            "model": Settings.model,
            "messages": [{"role": "user", "content": "Say something."}],
            "stream": stream,
        }
        started = time.time()
        context: dict[str, Any] = {"t": round(started - Settings.t0, 6), "stream": stream, "user": self.index}
        try:
            with self.client.post(
                "/v1/chat/completions",
                json=body,
                name="chat-stream" if stream else "chat",
                stream=stream,
                catch_response=True,
                context=context,
                timeout=Settings.request_timeout,
            ) as response:
                try:
                    self._read(response, stream, started, context)
                except Exception as exc:  # anything escaping here would vanish from the stats
                    context.update(ok=False, error_kind=f"client_{type(exc).__name__}")
                context["latency_ms"] = round((time.time() - started) * 1000, 3)
                # Locust reports a merged copy of `context`: update the one it will report.
                response.request_meta["context"].update(context)
                if context.get("ok"):
                    response.success()
                else:
                    response.failure(context.get("error_kind", "error"))
        except Exception as exc:
            context.update(ok=False, error_kind=_error_kind(0, exc))

    def _read(self, response: Any, stream: bool, started: float, context: dict[str, Any]) -> None:
        status = response.status_code or 0
        context.update(
            status=status,
            served_by=response.headers.get("x-served-by", ""),
            attempts=response.headers.get("x-attempts", ""),
            degraded=response.headers.get("x-degraded", "") == "true",
        )
        if status != 200:
            context.update(ok=False, error_kind=_error_kind(status, response.error if status == 0 else None))
            return
        if not stream:
            context["ttft_ms"] = round((time.time() - started) * 1000, 3)
            try:
                choices = response.json().get("choices") or []
                ok = bool(choices)
                context["finish_reason"] = (choices[0].get("finish_reason") or "") if ok else ""
            except (ValueError, AttributeError, IndexError):
                ok = False
            context.update(ok=ok, error_kind="" if ok else "bad_json")
            return
        done = False
        for line in response.iter_lines():
            if not line or not line.startswith(b"data:"):
                continue
            if "ttft_ms" not in context:
                context["ttft_ms"] = round((time.time() - started) * 1000, 3)
            payload = line[5:].strip()
            if payload == b"[DONE]":
                done = True
                break
            if b'"error"' in payload and json.loads(payload).get("error"):
                context.update(ok=False, error_kind="stream_error")
                return
            if b'"finish_reason":' in payload and b'"finish_reason": null' not in payload:
                context["finish_reason"] = _finish_reason(payload)
        context.update(ok=done, error_kind="" if done else "stream_truncated")


def _finish_reason(payload: bytes) -> str:
    """The chunk's finish_reason: a stream that says [DONE] without one was cut and papered over."""
    try:
        choices = json.loads(payload).get("choices") or [{}]
        return str(choices[0].get("finish_reason") or "")
    except (ValueError, AttributeError):
        return ""


def _configure(args: argparse.Namespace) -> None:
    Settings.rate, Settings.users = args.rate, args.users
    Settings.stream_share, Settings.model = args.stream_share, args.model
    Settings.request_timeout, Settings.seed = args.request_timeout, args.seed
    Settings.t0 = args.t0 or time.time()
    Settings.stop_sending_at = Settings.t0 + args.duration


def _drain(timeout: float) -> None:
    until = time.time() + timeout
    while IN_FLIGHT and time.time() < until:
        gevent.sleep(0.05)


def run(args: argparse.Namespace) -> int:
    if args.role == "worker":
        return run_remote_worker(args)
    if args.workers:
        return run_master(args)
    if args.worker_of:
        return run_worker(args)
    _configure(args)
    recorder = Recorder(args.records)
    events.request.add_listener(recorder.on_request)
    environment = Environment(user_classes=[ChatUser], events=events, host=args.host)
    runner = environment.create_local_runner()
    runner.start(args.users, spawn_rate=min(100, args.users))
    gevent.sleep(max(0.0, Settings.stop_sending_at - time.time()))
    _drain(args.request_timeout + 1)
    runner.quit()
    runner.greenlet.join()
    total = environment.stats.total.num_requests + environment.stats.total.num_none_requests
    recorder.close()
    summary = {
        "locust_requests": environment.stats.total.num_requests,
        "locust_failures": environment.stats.total.num_failures,
        "records": recorder.rows,
        "total": total,
    }
    if args.summary:
        args.summary.write_text(json.dumps(summary))
    print(json.dumps(summary), flush=True)
    return 0  # our verdicts decide, not Locust's exit-on-any-failure


def run_worker(args: argparse.Namespace) -> int:
    """A Locust worker: paces its share of users, drains on stop, records to its own file."""
    _configure(args)
    recorder = Recorder(args.records)
    events.request.add_listener(recorder.on_request)
    events.test_stopping.add_listener(lambda **kwargs: _drain(args.request_timeout + 1))
    environment = Environment(user_classes=[ChatUser], events=events, host=args.host)
    runner = environment.create_worker_runner(LOOPBACK, args.worker_of)
    runner.greenlet.join()
    recorder.close()
    return 0


def run_remote_worker(args: argparse.Namespace) -> int:
    """A worker in another container or machine: records to its own file beside `--records`."""
    _configure(args)
    environment = Environment(user_classes=[ChatUser], events=events, host=args.host)
    runner = environment.create_worker_runner(args.master_host, args.master_port)
    runner.register_message(SETTINGS_MESSAGE, _apply_settings)
    recorder = Recorder(_remote_records(args.records, runner.client_id))
    events.request.add_listener(recorder.on_request)
    events.test_stopping.add_listener(lambda **kwargs: _drain(Settings.request_timeout + 1))
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
    names = ["rate", "users", "stream_share", "model", "request_timeout", "seed", "t0", "stop_sending_at"]
    return {name: getattr(Settings, name) for name in names}


def run_master(args: argparse.Namespace) -> int:
    """Locust's own distributed mode: a master and `--workers` worker processes (started here,
    or with `--role master` started elsewhere and waited for)."""
    import subprocess
    import sys

    from locust.runners import STATE_STOPPED

    _configure(args)
    environment = Environment(user_classes=[ChatUser], events=events, host=args.host)
    remote = args.role == "master"
    port = args.master_port if remote else _free_port()
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
            [sys.executable, "-m", "harness.load", *shared, "--worker-of", str(port), "--records", str(path)]
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
    rows = _merge(worker_files, args.records)
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


def _merge(parts: list[Path], target: Path) -> int:
    """Concatenate worker record files into one (header once), sorted by start time."""
    rows: list[dict[str, str]] = []
    for part in parts:
        if part.exists():
            with part.open(encoding="utf-8", newline="") as handle:
                rows.extend(csv.DictReader(handle))
    rows.sort(key=lambda row: float(row["t"] or 0))
    with target.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.DictWriter(handle, FIELDS)
        writer.writeheader()
        writer.writerows(rows)
    for part in parts:
        part.unlink(missing_ok=True)
    return len(rows)


def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind((LOOPBACK, 0))
        return int(sock.getsockname()[1])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Open-loop Locust load at an OpenAI-compatible URL")
    parser.add_argument("--host", required=True)
    parser.add_argument("--rate", type=float, default=10.0)
    parser.add_argument("--users", type=int, default=4)
    parser.add_argument("--duration", type=float, default=10.0)
    parser.add_argument("--stream-share", type=float, default=0.0)
    parser.add_argument("--model", default="chat")
    parser.add_argument("--request-timeout", type=float, default=30.0)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--t0", type=float, default=0.0, help="the run's epoch start (records are relative)")
    parser.add_argument("--records", type=Path, required=True)
    parser.add_argument("--summary", type=Path)
    parser.add_argument("--workers", type=int, default=0, help="Locust master + this many worker processes")
    parser.add_argument("--worker-of", type=int, default=0, help=argparse.SUPPRESS)
    parser.add_argument(
        "--role",
        choices=["master", "worker"],
        default=None,
        help="across containers or machines: a master waiting for --workers, or a worker",
    )
    parser.add_argument("--master-host", default=LOOPBACK, help="where a master binds or a worker connects")
    parser.add_argument("--master-port", type=int, default=5557)
    args = parser.parse_args(argv)
    if args.role == "master" and args.workers < 1:
        parser.error("--role master needs --workers N (how many workers to wait for)")
    return run(args)


if __name__ == "__main__":
    raise SystemExit(main())
