"""`--target-header`: what a gateway like Portkey needs in every request reaches it, from real
Locust over real HTTP; a header that cannot be sent is refused before anything starts."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from harness.run.target_headers import HeaderError, parse_header, resolve

CONFIG = {"strategy": {"mode": "fallback"}, "targets": [{"provider": "openai", "custom_host": "x"}]}
ANSWER = {
    "choices": [{"index": 0, "message": {"role": "assistant", "content": "hi"}, "finish_reason": "stop"}]
}


class _Recording(BaseHTTPRequestHandler):
    seen: list[dict[str, str]] = []  # noqa: RUF012 (one test's server)

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("content-length", 0)))
        _Recording.seen.append(dict(self.headers.items()))
        body = json.dumps(ANSWER).encode()
        self.send_response(200)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


def test_every_request_carries_the_headers_from_a_file(tmp_path):
    config = tmp_path / "portkey.json"
    config.write_text(json.dumps(CONFIG) + "\n")
    name, value = resolve(parse_header(f"x-portkey-config: @{config}"))
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Recording)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        argv = [sys.executable, "-m", "harness.load", "--host", f"http://127.0.0.1:{server.server_port}"]
        argv += ["--rate", "10", "--users", "1", "--duration", "1", "--records", str(tmp_path / "r.csv")]
        argv += ["--header", f"{name}: {value}", "--header", "x-team: chaos"]
        subprocess.run(argv, check=True, capture_output=True, timeout=60)
    finally:
        server.shutdown()
    assert len(_Recording.seen) >= 8
    for headers in _Recording.seen:
        lowered = {key.lower(): text for key, text in headers.items()}
        assert json.loads(lowered["x-portkey-config"]) == CONFIG
        assert lowered["x-team"] == "chaos"


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("no colon here", "write it as 'NAME: VALUE'"),
        (": value", "write it as 'NAME: VALUE'"),
        ("bad name: value", "is not an HTTP header name"),
        ("x-config: @/nonexistent/config.json", "cannot read /nonexistent/config.json"),
    ],
)
def test_a_header_that_cannot_be_sent_names_why(text, says):
    with pytest.raises(HeaderError) as raised:
        resolve(parse_header(text))
    assert says in str(raised.value)


def test_a_value_on_more_than_one_line_is_refused(tmp_path):
    spread = tmp_path / "config.json"
    spread.write_text(json.dumps(CONFIG, indent=2))
    with pytest.raises(HeaderError, match="spans lines"):
        resolve(parse_header(f"x-portkey-config: @{spread}"))
