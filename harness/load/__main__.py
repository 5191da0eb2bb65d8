"""`python -m harness.load --host URL --rate 50 --duration 20 --records records.csv`: Locust load
in its own process, the only place that imports locust (and so gevent).

Across containers or machines: one `--role master --workers N --master-host 0.0.0.0` and N
`--role worker --master-host MASTER`, sharing the records folder.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import gevent
from locust import events
from locust.env import Environment

from harness.load.distributed import LOOPBACK, run_master, run_remote_worker, run_worker
from harness.load.records import Recorder
from harness.load.user import ChatUser, Settings, configure, drain


def run(args: argparse.Namespace) -> int:
    """One load run as the arguments say: single process, master, or worker."""
    if args.role == "worker":
        return run_remote_worker(args)
    if args.workers:
        return run_master(args)
    if args.worker_of:
        return run_worker(args)
    configure(args)
    recorder = Recorder(args.records)
    events.request.add_listener(recorder.on_request)
    environment = Environment(user_classes=[ChatUser], events=events, host=args.host)
    runner = environment.create_local_runner()
    runner.start(args.users, spawn_rate=min(100, args.users))
    gevent.sleep(max(0.0, Settings.stop_sending_at - time.time()))
    drain(args.request_timeout + 1)
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


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Open-loop Locust load at an OpenAI-compatible URL")
    parser.add_argument("--host", required=True)
    parser.add_argument("--rate", type=float, default=10.0)
    parser.add_argument("--users", type=int, default=4)
    parser.add_argument("--duration", type=float, default=10.0)
    parser.add_argument("--stream-share", type=float, default=0.0)
    parser.add_argument("--tool-share", type=float, default=0.0, help="share of requests offering a tool")
    parser.add_argument("--model", default="chat")
    parser.add_argument("--request-timeout", type=float, default=30.0)
    parser.add_argument(
        "--header", action="append", default=[], metavar="'NAME: VALUE'", help="send with every request"
    )
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
