"""Browser tests: Debian's chromium, driven by Playwright, against a real stack, gateway and traffic."""

from __future__ import annotations

import os
import shutil
import subprocess
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import requests
from playwright.sync_api import Browser, Page, expect, sync_playwright

from harness.gateway.launch import GROUP, gateway_config
from harness.run import GatewayProcess
from harness.stack import PROJECT_ROOT, Stack, start_stack

CHROMIUM = Path("/usr/bin/chromium")
SCREENSHOTS = PROJECT_ROOT / "test-output" / "browser"
TOKEN = os.environ.get("CHAOS_ADMIN_TOKEN") or "browser-admin-token"
"""The gateway takes CHAOS_ADMIN_TOKEN over its config, so a developer's own value must win here too."""
RATE = 12.0
"""Requests per second of background traffic: enough for shares, little CPU on 2 cores."""
TRAFFIC_LIMIT_S = 120.0
"""The traffic thread stops by itself after this long even if a test never stops it."""


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "browser" in str(item.fspath):
            item.add_marker(pytest.mark.integration)


def chromium_problem() -> str | None:
    """None when Debian's chromium is there (installed now if we can), else why it is not."""
    if CHROMIUM.exists():
        return None
    if shutil.which("apt-get") is None:
        return f"{CHROMIUM} is missing and there is no apt-get to install Debian's chromium"
    if os.geteuid() != 0:
        return f"{CHROMIUM} is missing and installing it needs root: run `make browser` as root"
    for command in (["apt-get", "update"], ["apt-get", "install", "-y", "chromium"]):
        try:
            done = subprocess.run(command, capture_output=True, text=True, timeout=900, check=False)
        except (OSError, subprocess.TimeoutExpired) as exc:
            return f"{CHROMIUM} is missing and `{' '.join(command)}` failed: {exc}"
        if done.returncode != 0:
            tail = " | ".join(done.stderr.strip().splitlines()[-2:])
            return f"{CHROMIUM} is missing and `{' '.join(command)}` failed: {tail}"
    return None if CHROMIUM.exists() else f"apt-get installed chromium but {CHROMIUM} is still missing"


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    """Module-scoped on purpose: Playwright's sync API keeps an event loop running in this thread
    while it is open, and every later `asyncio.run()` (the core's tests) would fail under it."""
    problem = chromium_problem()
    if problem is not None:
        pytest.skip(problem)
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(
            executable_path=str(CHROMIUM), headless=True, args=["--no-sandbox"]
        )
        yield launched
        launched.close()


@dataclass
class Traffic:
    """A bounded background client: `RATE` chat requests a second until stopped or time is up."""

    url: str
    sent: int = 0
    failed: int = 0
    stop_event: threading.Event = field(default_factory=threading.Event)
    thread: threading.Thread | None = None

    def start(self) -> None:
        self.thread = threading.Thread(target=self._run, name="browser-test-traffic", daemon=True)
        self.thread.start()

    def _run(self) -> None:
        body = {"model": GROUP, "messages": [{"role": "user", "content": "hello"}]}
        deadline = time.monotonic() + TRAFFIC_LIMIT_S
        with requests.Session() as session:
            while not self.stop_event.is_set() and time.monotonic() < deadline:
                started = time.monotonic()
                try:
                    ok = session.post(f"{self.url}/v1/chat/completions", json=body, timeout=5).ok
                except requests.RequestException:
                    ok = False
                self.sent += 1
                self.failed += not ok
                self.stop_event.wait(max(0.0, 1.0 / RATE - (time.monotonic() - started)))

    def stop(self) -> None:
        self.stop_event.set()
        if self.thread is not None:
            self.thread.join(timeout=10)


@dataclass
class Operated:
    """A running stack whose gateway takes traffic, and where its audit trail is written."""

    stack: Stack
    url: str
    audit: Path
    traffic: Traffic


@pytest.fixture(scope="module")
def operated(tmp_path_factory: pytest.TempPathFactory, browser: Browser) -> Iterator[Operated]:
    folder = tmp_path_factory.mktemp("browser-stack")
    stack = start_stack(3, folder)
    traffic = None
    gateway = None
    try:
        policies = {
            "breaker": {"consecutive_failures": 3, "wait_duration": 2.0},
            "restoration": {"steps": [0.5, 1.0], "hold": 1.0},
            # No active health checks: a probe that happened to find model-0 dead before user
            # traffic did moved the traffic off it, so its breaker never opened and the page
            # rightly never showed "open" (a CI run on 2026-12-01). The checks have their own
            # tests (test_gateway_defaults.py); here the breaker is what the page must show.
            "health": None,
        }
        config = gateway_config(stack, "resilient", policies, folder / "audit.jsonl", plan="weighted")
        config["admin_token"] = TOKEN
        gateway = GatewayProcess.start(config, folder)
        url = gateway.url
        traffic = Traffic(url)
        traffic.start()
        yield Operated(stack, url, folder / "audit.jsonl", traffic)
    finally:
        if traffic is not None:
            traffic.stop()
        if gateway is not None:
            gateway.stop()
        stack.stop()


@pytest.fixture
def page(browser: Browser, operated: Operated) -> Iterator[Page]:
    """The dashboard, connected live with the admin token."""
    context = browser.new_context(viewport={"width": 1440, "height": 1000})
    opened = context.new_page()
    errors: list[str] = []
    opened.on("pageerror", lambda error: errors.append(str(error)))
    try:
        opened.goto(f"{operated.url}/dashboard")
        connect(opened, TOKEN)
        expect(opened.locator("#connection")).to_have_attribute("data-state", "live", timeout=10_000)
        yield opened
    finally:
        context.close()
    assert not errors, f"the page threw: {errors}"


def connect(page: Page, token: str) -> None:
    page.fill("#token-input", token)
    page.click("#token-save")


def screenshot(page: Page, name: str) -> Path:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / name
    page.screenshot(path=str(path), full_page=True)
    return path
