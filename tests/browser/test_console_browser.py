"""The console in a real headless Chromium (Selenium), against a receiver fed by a real pipeline run
(exporter → Prometheus rule → Alertmanager → webhook): sign in, find the incident, open it, acknowledge,
recover; and the negative paths (no session, CSRF, a viewer, a ``<script>`` label) over plain HTTP and in
the browser. Screenshots of the list and incident pages land in ``test-artifacts/console/``.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from model_registry import open_registry
from tests.browser.console_stack import (
    APPROVAL_RUNBOOK,
    PASSWORDS,
    XSS,
    ConsoleStack,
    chromium_driver,
    start_console_stack,
)
from tests.support.realparts import wait_until

pytestmark = pytest.mark.slow

ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "console"
PAGES = ("/", "/incidents/1", "/incidents/1/review", "/console/runbooks", "/console/runbooks/drift-console")


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ConsoleStack]:
    running = start_console_stack(tmp_path_factory.mktemp("console"))
    yield running
    running.stop()


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    driver = chromium_driver()
    yield driver
    driver.quit()


def _csrf(html: str) -> str:
    found = re.search(r'name="csrf" value="([^"]+)"', html)
    assert found is not None, "no CSRF field on the page"
    return found.group(1)


def _no_alert(browser: Any) -> None:
    from selenium.common.exceptions import NoAlertPresentException

    with pytest.raises(NoAlertPresentException):
        browser.switch_to.alert  # noqa: B018  (a script that ran would have opened one)


def _sign_in(browser: Any, stack: ConsoleStack, user: str) -> None:
    from selenium.webdriver.common.by import By

    browser.delete_all_cookies()
    browser.get(stack.url + "/")
    assert "/login" in browser.current_url  # no session: the sign-in page
    browser.find_element(By.ID, "username").send_keys(user)
    browser.find_element(By.ID, "password").send_keys(PASSWORDS[user])
    browser.find_element(By.ID, "password-submit").click()
    wait_until(lambda: browser.current_url.rstrip("/") == stack.url, timeout=10, message="signed in")


def _screenshot(browser: Any, name: str) -> None:
    """The whole page, top to bottom (the window is grown to the page's height first)."""
    browser.execute_script("window.scrollTo(0, 0)")
    height = int(browser.execute_script("return document.documentElement.scrollHeight"))
    browser.set_window_size(1400, min(max(height + 40, 900), 8000))
    browser.save_screenshot(str(ARTIFACTS / name))
    browser.set_window_size(1400, 1800)


def _confirm_click(browser: Any, element_id: str) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions
    from selenium.webdriver.support.ui import WebDriverWait

    browser.find_element(By.ID, element_id).click()
    WebDriverWait(browser, 5).until(expected_conditions.alert_is_present())
    dialog = browser.switch_to.alert
    assert "incident 1" in dialog.text
    dialog.accept()


def test_sign_in_find_open_acknowledge_recover(stack: ConsoleStack, browser: Any) -> None:
    from selenium.webdriver.common.by import By

    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    _sign_in(browser, stack, "alice")
    rows = browser.find_elements(By.CSS_SELECTOR, "tr.incident-row")
    assert [r.get_attribute("data-incident") for r in rows] == ["1"]
    assert "SEV2" in rows[0].text and "churn" in rows[0].text and "drift-console" in rows[0].text
    _no_alert(browser)
    _screenshot(browser, "incident-list.png")

    # the list filters: a filter that excludes it, then one that keeps it
    browser.get(stack.url + "/?state=closed")
    assert not browser.find_elements(By.CSS_SELECTOR, "tr.incident-row")
    browser.get(stack.url + "/?state=live&severity=SEV2")
    browser.find_element(By.LINK_TEXT, "#1").click()
    assert browser.current_url.endswith("/incidents/1")
    _no_alert(browser)
    assert browser.find_element(By.ID, "state").text == "open"
    charts = browser.find_elements(By.CSS_SELECTOR, "#charts svg")
    assert len(charts) == 3  # two evidence queries and the verify query
    assert browser.find_elements(By.CSS_SELECTOR, "#charts svg polyline")  # real data was drawn
    assert "traffic" in browser.find_element(By.ID, "registry").text
    assert XSS in browser.find_element(By.ID, "alerts").text  # shown as text, never run
    assert (
        "queued" in browser.find_element(By.ID, "messages").text
        or "delivered" in browser.find_element(By.ID, "messages").text
    )

    _confirm_click(browser, "btn-acknowledge")
    wait_until(lambda: "/incidents/1" in browser.current_url and "did=" in browser.current_url, timeout=10)
    timeline = browser.find_element(By.ID, "timeline-table").text
    assert "acknowledged by alice (console)" in timeline
    assert "alice (console)" in browser.find_element(By.ID, "acknowledged").text

    _confirm_click(browser, "btn-recover")
    wait_until(lambda: "recovery" in browser.current_url, timeout=30, message="recovery landed")
    assert "recovery requested by alice (console)" in browser.find_element(By.ID, "timeline-table").text
    assert stack.traffic() == {"v2": 100.0} or stack.traffic() == {"v1": 0.0, "v2": 100.0}
    assert "traffic_split" in browser.find_element(By.ID, "actions").text
    _screenshot(browser, "incident-page.png")
    browser.get(stack.url + "/incidents/1/review")
    assert "detection delay of FeatureDrift" in browser.find_element(By.ID, "facts").text
    _screenshot(browser, "review-page.png")


def test_chat_messages_link_to_the_console_page(stack: ConsoleStack) -> None:
    body = str(stack.chat.bodies()[0])
    assert f"{stack.url}/incidents/1" in body and "/api/v1/incidents/1" not in body


def test_no_session_is_sent_to_sign_in(stack: ConsoleStack) -> None:
    for path in PAGES:
        response = requests.get(stack.url + path, allow_redirects=False, timeout=10)
        assert response.status_code == 303, path
        assert response.headers["Location"].startswith("/login?next=/"), path
    posted = requests.post(stack.url + "/incidents/1/resolve", allow_redirects=False, timeout=10)
    assert posted.status_code == 303 and posted.headers["Location"].startswith("/login")


def test_post_without_or_with_a_wrong_csrf_token_is_refused(stack: ConsoleStack) -> None:
    session = stack.signed_in("alice")
    for data in ({}, {"csrf": "wrong"}, {"csrf": ""}):
        response = session.post(
            stack.url + "/incidents/1/resolve", data=data, allow_redirects=False, timeout=10
        )
        assert response.status_code == 403
        assert "CSRF" in response.text
    assert stack.receiver.context.store.get_incident(1).incident.state != "resolved"
    login = requests.post(
        stack.url + "/login",
        data={"username": "alice", "password": PASSWORDS["alice"]},
        allow_redirects=False,
        timeout=10,
    )
    assert login.status_code == 403  # the sign-in form's own CSRF (double-submit cookie) is required too


def test_a_viewer_can_look_but_cannot_act(stack: ConsoleStack) -> None:
    session = stack.signed_in("victor")
    page = session.get(stack.url + "/incidents/1", timeout=30)
    assert page.status_code == 200 and 'id="read-only"' in page.text and "btn-resolve" not in page.text
    csrf = _csrf(page.text)  # a valid token: the role is what refuses
    for action in ("acknowledge", "resolve", "close", "recover"):
        response = session.post(
            stack.url + f"/incidents/1/{action}", data={"csrf": csrf}, allow_redirects=False, timeout=10
        )
        assert response.status_code == 403, action
        assert "responder role" in response.text
    refused = session.post(
        stack.url + "/incidents/1/approvals/1/approve", data={"csrf": csrf}, allow_redirects=False, timeout=10
    )
    assert refused.status_code in (403, 404)  # 404 while the store has no such approval
    assert stack.receiver.context.store.get_incident(1).incident.state != "resolved"


def test_a_script_label_is_inert_on_every_page(stack: ConsoleStack, browser: Any) -> None:
    session = stack.signed_in("alice")
    escaped = "&lt;script&gt;alert(1)&lt;/script&gt;"
    for path in PAGES:
        response = session.get(stack.url + path, timeout=30)
        assert response.status_code == 200, path
        assert "<script>alert" not in response.text, path
        csp = response.headers["Content-Security-Policy"]
        assert "script-src 'self'" in csp and "unsafe-inline" not in csp and "default-src 'none'" in csp
        assert response.headers["X-Frame-Options"] == "DENY"
        cookie = response.headers.get("Set-Cookie", "")
        assert "receiver_console=" not in cookie or "HttpOnly" in cookie
    for path in ("/", "/incidents/1", "/incidents/1/review"):
        assert escaped in session.get(stack.url + path, timeout=30).text or path == "/", path
    markdown = session.get(stack.url + "/incidents/1/review.md", timeout=30)
    assert markdown.headers["Content-Type"].startswith("text/markdown")
    assert "data:image/svg+xml;base64," in markdown.text  # the charts are embedded
    _sign_in(browser, stack, "alice")
    for path in PAGES:
        browser.get(stack.url + path)
        _no_alert(browser)


def test_approve_a_pending_rollback(tmp_path: Path, browser: Any) -> None:
    """A rollback gated by ``approve:`` waits; Approve in the console applies it, once, with who approved
    it on the timeline (issue 11 item 2's interface: store.approvals, Responder.decide)."""
    from selenium.webdriver.common.by import By

    gated = start_console_stack(tmp_path, APPROVAL_RUNBOOK, contained=False)
    try:
        approvals = gated.receiver.context.store.approvals
        wait_until(lambda: approvals.pending(1), timeout=30, message="a pending approval")
        (pending,) = approvals.pending(1)
        assert pending.kind == "rollback" and gated.traffic() == {"v2": 100.0}  # nothing applied yet
        _sign_in(browser, gated, "alice")
        browser.get(gated.url + "/incidents/1")
        browser.find_element(By.ID, f"approve-{pending.id}").click()
        browser.switch_to.alert.accept()
        wait_until(lambda: "did=approved" in browser.current_url, timeout=10, message="approved")
        assert "alice (console)" in browser.find_element(By.ID, "timeline-table").text
        wait_until(
            lambda: open_registry(str(gated.registry_db)).state("churn").active_version == "v1",
            timeout=30,
            message="rollback applied",
        )
        assert not approvals.pending(1)
    finally:
        gated.stop()
