"""The operator's dashboard in a real browser: live state, audited controls, refusals."""

from __future__ import annotations

import re
import time

import requests
from playwright.sync_api import Locator, Page, expect

from resilience_core import read_audit
from tests.browser.conftest import TOKEN, Operated, connect, screenshot

WAIT_MS = 10_000


def row(page: Page, model: str, group: str = "chat") -> Locator:
    return page.locator(f'tr[data-group="{group}"][data-model="{model}"]')


def admin_state(operated: Operated) -> dict:
    headers = {"Authorization": f"Bearer {TOKEN}"}
    return requests.get(f"{operated.url}/admin/state", headers=headers, timeout=5).json()


def model_state(operated: Operated, label: str) -> dict:
    return next(m for m in admin_state(operated)["groups"]["chat"] if m["model"] == label)


def act(page: Page, model: str, action: str, reason: str, who: str = "") -> None:
    """Click an action on a model's row and confirm it in the dialog with `reason`."""
    row(page, model).locator(f'button[data-action="{action}"]').click()
    expect(page.locator("#confirm-dialog")).to_be_visible()
    page.fill("#confirm-reason", reason)
    if who:
        page.fill("#confirm-who", who)
    page.click("#confirm-ok")


def received(operated: Operated) -> dict[str, int]:
    return {
        name: sum(sum(c.values()) for c in counts["per_second"].values())
        for name, counts in operated.stack.endpoint_counts().items()
    }


def test_a_fault_shows_in_the_page_and_so_does_the_recovery(page, operated):
    target = row(page, "model-0/model-0")
    expect(target).to_have_attribute("data-circuit", "closed", timeout=WAIT_MS)
    expect(target.locator('[data-field="share"]')).not_to_have_text("0%", timeout=WAIT_MS)
    expect(target.locator('[data-field="p50"]')).to_contain_text("ms")
    operated.stack.toxics.set_enabled("model-0", False)
    try:
        expect(target).to_have_attribute("data-circuit", "open", timeout=WAIT_MS)
        expect(target.locator('[data-field="health"]')).to_have_text("unhealthy")
        opened = page.locator('#audit-rows tr[data-kind="CircuitStateChanged"][data-model="model-0/model-0"]')
        expect(opened.first).to_contain_text("open")
        screenshot(page, "fault-breaker-open.png")
    finally:
        operated.stack.toxics.set_enabled("model-0", True)
    expect(target).to_have_attribute("data-circuit", "closed", timeout=WAIT_MS)
    expect(
        page.locator('#audit-rows tr[data-kind="RestorationStepChanged"][data-model="model-0/model-0"]').first
    ).to_be_visible(timeout=WAIT_MS)


def test_isolating_a_model_from_the_page_takes_its_traffic_to_zero(page, operated):
    model = "model-1/model-1"
    target = row(page, model)
    share = target.locator('[data-field="share"]')
    expect(share).not_to_have_text("0%", timeout=WAIT_MS)

    target.locator('button[data-action="isolate"]').click()
    expect(page.locator("#confirm-dialog")).to_be_visible()
    expect(page.locator("#confirm-weight")).to_be_hidden()  # isolating asks for no weight
    page.click("#confirm-ok")  # no reason yet: the dialog refuses and stays open
    expect(page.locator("#confirm-error")).to_have_text("A reason is required.")
    expect(page.locator("#confirm-dialog")).to_be_visible()
    assert model_state(operated, model)["circuit"] == "closed"
    page.fill("#confirm-reason", "browser test: provider incident")
    page.fill("#confirm-who", "playwright")
    page.click("#confirm-ok")

    expect(page.locator("#action-result")).to_have_attribute("data-kind", "ok")
    expect(target).to_have_attribute("data-circuit", "isolated", timeout=WAIT_MS)
    expect(target.locator('[data-field="health"]')).to_have_text("isolated")
    audit_row = page.locator(f'#audit-rows tr[data-action="isolate"][data-model="{model}"]').first
    expect(audit_row).to_contain_text("browser test: provider incident")
    expect(audit_row).to_contain_text("playwright")
    expect(share).to_have_text("0%", timeout=WAIT_MS)
    screenshot(page, "isolated.png")

    time.sleep(0.3)  # requests already in flight to the model finish
    operated.stack.reset_endpoint_counts()
    time.sleep(1.5)
    counts = received(operated)
    assert counts["model-1"] == 0
    assert counts["model-0"] + counts["model-2"] > 0
    actions = [r for r in read_audit(operated.audit) if r["kind"] == "AdminAction"]
    assert any(
        (r["action"], r["model"], r["who"], r["why"])
        == ("isolate", model, "playwright", "browser test: provider incident")
        for r in actions
    )

    act(page, model, "restore", "browser test: incident over")
    expect(target).not_to_have_attribute("data-circuit", "isolated", timeout=WAIT_MS)


def test_a_wrong_or_missing_token_is_refused_in_the_page_and_nothing_changes(page, operated):
    model = "model-2/model-2"
    before = admin_state(operated)["refused_admin_requests"]
    connect(page, "not-the-token")
    expect(page.locator("#connection")).to_have_attribute("data-state", "refused", timeout=WAIT_MS)
    expect(page.locator("#connection")).to_have_text("token refused (401)")

    act(page, model, "drain", "should be refused")
    result = page.locator("#action-result")
    expect(result).to_have_attribute("data-status", "401")
    expect(result).to_contain_text("Refused (401)")
    expect(result).to_contain_text("Nothing changed")
    screenshot(page, "refused.png")

    page.click("#token-forget")
    act(page, model, "isolate", "no token at all")
    expect(result).to_have_attribute("data-status", "401")
    state = model_state(operated, model)
    assert (state["circuit"], state["drained"]) == ("closed", False)
    assert admin_state(operated)["refused_admin_requests"] >= before + 3
    reasons = {r.get("why") for r in read_audit(operated.audit)}
    assert not reasons & {"should be refused", "no token at all"}


def test_degraded_switch_and_run_status_show_in_the_page(page, operated):
    status = {
        "scenario": "one-model-down",
        "variant": "resilient",
        "phase": "fault",
        "elapsed": 21.0,
        "duration": 40.0,
        "faults": [{"model": "model-0", "kind": "down", "fault": 0}],
    }
    headers = {"Authorization": f"Bearer {TOKEN}"}
    assert requests.post(f"{operated.url}/admin/run-status", json=status, headers=headers, timeout=5).ok
    expect(page.locator("#run")).to_be_visible(timeout=WAIT_MS)
    expect(page.locator("#run-phase")).to_have_text("fault")
    expect(page.locator('#run-faults li[data-model="model-0"]')).to_contain_text("down")

    page.click("#degraded-toggle")
    page.fill("#confirm-reason", "browser test: shed load")
    page.click("#confirm-ok")
    expect(page.locator("#degraded-state")).to_have_attribute("data-enabled", "true", timeout=WAIT_MS)
    assert admin_state(operated)["degraded"]["enabled"]
    screenshot(page, "degraded-and-run.png")
    page.click("#degraded-toggle")
    page.fill("#confirm-reason", "browser test: back to normal")
    page.click("#confirm-ok")
    expect(page.locator("#degraded-state")).to_have_attribute("data-enabled", "false", timeout=WAIT_MS)
    expect(page.locator('#audit-rows tr[data-action="degraded_off"]').first).to_be_visible()

    row(page, "model-2/model-2").locator('button[data-action="weight"]').click()
    expect(page.locator("#confirm-weight")).to_be_visible()
    page.fill("#confirm-weight", "0.5")
    page.fill("#confirm-reason", "browser test: halve its traffic")
    page.click("#confirm-ok")
    expect(row(page, "model-2/model-2").locator('[data-field="weight"]')).to_have_text("0.5", timeout=WAIT_MS)
    assert model_state(operated, "model-2/model-2")["weight"] == 0.5


def sparkline(page: Page, model: str, figure: str) -> Locator:
    return row(page, model).locator(f'svg[data-spark="{figure}"]')


def test_each_model_has_live_sparklines_of_rate_error_rate_and_p99(page, operated):
    model = "model-0/model-0"
    rate, errors, p99 = (sparkline(page, model, f) for f in ("rate", "error-rate", "p99"))
    # One point a second: a few seconds of traffic draw a line, not a dot.
    expect(rate).to_have_attribute("data-points", re.compile(r"^([4-9]|\d\d+)$"), timeout=WAIT_MS)
    assert float(rate.get_attribute("data-max")) > 0
    assert rate.locator("path").get_attribute("d").count("L") >= 3
    expect(p99).not_to_have_attribute("data-points", "0")
    assert "ms to" in p99.locator("title").text_content()
    # A dead model: its error-rate line rises while the page is open.
    operated.stack.toxics.set_enabled("model-0", False)
    try:
        expect(row(page, model)).to_have_attribute("data-circuit", "open", timeout=WAIT_MS)
        deadline = time.monotonic() + WAIT_MS / 1000
        while float(errors.get_attribute("data-max") or 0) == 0 and time.monotonic() < deadline:
            time.sleep(0.2)
        assert float(errors.get_attribute("data-max") or 0) > 0, errors.locator("title").text_content()
        screenshot(page, "sparklines.png")
    finally:
        operated.stack.toxics.set_enabled("model-0", True)
    expect(row(page, model)).to_have_attribute("data-circuit", "closed", timeout=WAIT_MS)
