"""The operator console in a real (headless) Chromium: login, review, search, PDF, roles, audit.

The tests of this module share one console and run in order: the correction made by the
operator is what the search, the PDF and the auditor's trail then show.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.browser.conftest import LiveConsole
from tests.integration.test_console import PASSWORDS

pytestmark = pytest.mark.browser


def log_in(page, console: LiveConsole, username: str, password: str | None = None) -> None:  # type: ignore[no-untyped-def]
    page.goto(console.url + "/login")
    page.fill("#username", username)
    page.fill("#password", password if password is not None else PASSWORDS[username])
    page.click("button[type=submit]")
    page.wait_for_load_state()


def test_login_and_a_wrong_password_is_refused(
    page,
    live_console: LiveConsole,  # type: ignore[no-untyped-def]
    artifacts: Path,
) -> None:
    page.goto(live_console.url + "/notices")
    assert "/login?next=" in page.url  # anonymous: sent to the login page
    log_in(page, live_console, "olga", "not-her-password")
    assert page.locator("#login-error").inner_text() == "Wrong username or password."
    assert "/login" in page.url
    page.screenshot(path=str(artifacts / "login-refused.png"))
    log_in(page, live_console, "olga")
    assert page.url == live_console.url + "/"
    assert "olga (operator)" in page.locator("#who").inner_text()
    assert page.locator("#backlog").inner_text() == "2"
    page.screenshot(path=str(artifacts / "dashboard.png"), full_page=True)


def test_operator_corrects_a_plate_and_the_notice_appears(
    page,
    live_console: LiveConsole,  # type: ignore[no-untyped-def]
    artifacts: Path,
) -> None:
    log_in(page, live_console, "olga")
    page.goto(live_console.url + "/review")
    card = page.locator(".review-item[data-plate='1-DEF-284']")
    assert card.locator("img.ev").count() == 2
    # the evidence images really load (decoded by the browser)
    widths = card.locator("img.ev").evaluate_all("imgs => imgs.map(i => i.naturalWidth)")
    assert all(w > 0 for w in widths)
    assert "diesel" in card.locator("dl.registry").inner_text()
    # a review item without notice cannot be confirmed, only corrected or rejected
    other = page.locator(".review-item[data-plate='1-XYZ-780']")
    assert other.locator("form.confirm").count() == 0
    assert other.locator("form.correct").count() == 1
    assert card.locator("form.confirm").count() == 1
    assert card.locator(".chars .c-lo").inner_text().startswith("8")
    page.screenshot(path=str(artifacts / "review-queue.png"), full_page=True)
    form = card.locator("form.correct")
    form.locator("input[name=plate]").fill("1-DEF-234")
    form.locator("input[name=reason]").fill("third digit is a 3 on both frames")
    form.locator("button").click()
    page.wait_for_url("**/notices/*")
    assert "notice issued" in page.locator("#flash").inner_text()
    assert page.locator("#status").inner_text() == "issued"
    assert "1-DEF-234" in page.locator("#plate").inner_text()
    assert "olga" in page.locator("#history").inner_text()
    page.screenshot(path=str(artifacts / "notice-detail.png"), full_page=True)

    # search finds it
    page.goto(live_console.url + "/notices")
    page.fill("input[name=plate]", "def-234")
    page.select_option("select[name=status]", "issued")
    page.click("#search button")
    page.wait_for_load_state()
    rows = page.locator("#notices tr")
    assert rows.count() == 2  # header + the notice
    assert "1-DEF-234" in rows.nth(1).inner_text()
    page.screenshot(path=str(artifacts / "notice-search.png"), full_page=True)

    # its PDF opens
    href = rows.nth(1).locator("a", has_text="PDF").get_attribute("href")
    assert href
    pdf = page.request.get(live_console.url + href)
    assert pdf.status == 200 and pdf.headers["content-type"] == "application/pdf"
    body = pdf.body()
    assert body.startswith(b"%PDF") and b"/Subtype /Image" in body
    (artifacts / "notice.pdf").write_bytes(body)


def test_operator_cannot_reach_supervisor_pages(
    page,
    live_console: LiveConsole,  # type: ignore[no-untyped-def]
    artifacts: Path,
) -> None:
    log_in(page, live_console, "olga")
    assert page.locator("nav a", has_text="Users").count() == 0
    response = page.goto(live_console.url + "/users")
    assert response is not None and response.status == 403
    assert page.locator("#error-status").inner_text() == "403"
    page.screenshot(path=str(artifacts / "operator-forbidden.png"))
    response = page.goto(live_console.url + "/audit")
    assert response is not None and response.status == 403


def test_auditor_sees_the_trail(page, live_console: LiveConsole, artifacts: Path) -> None:  # type: ignore[no-untyped-def]
    log_in(page, live_console, "ada")
    page.click("nav a:has-text('Audit trail')")
    page.wait_for_url("**/audit")
    console_trail = page.locator("#console-audit").inner_text()
    assert "review.correct" in console_trail and "olga" in console_trail
    # the registry trail keeps plates as keyed hashes: the auditor searches by plate
    page.fill("input[name=plate]", "1-def-234")
    page.click("form.search button")
    page.wait_for_load_state()
    rows = page.locator("#audit tr")
    assert rows.count() == 2  # header + the operator's lookup
    row = rows.nth(1).inner_text()
    assert "lez_enforcement" in row and "1-DEF-234" not in row
    # the lookup names the operator who made it, not the pipeline
    assert "olga" in row
    page.screenshot(path=str(artifacts / "audit-trail.png"), full_page=True)
    # read-only: no review actions offered
    page.goto(live_console.url + "/review")
    assert page.locator(".review-item").count() == 1
    assert page.locator("form.correct").count() == 0


def test_password_change_and_logout(page, live_console: LiveConsole, artifacts: Path) -> None:  # type: ignore[no-untyped-def]
    log_in(page, live_console, "ada")
    page.click("nav a:has-text('Password')")
    page.wait_for_url("**/account/password")
    new = "auditor-passphrase-2"
    page.fill("#current_password", PASSWORDS["ada"])
    page.fill("#new_password", new)
    page.fill("#new_password_again", new)
    page.click("#change-password button")
    page.wait_for_load_state()
    assert "Password changed" in page.locator("#flash").inner_text()
    page.screenshot(path=str(artifacts / "password-changed.png"))
    page.click("nav button:has-text('Log out')")
    page.wait_for_url("**/login")
    page.goto(live_console.url + "/notices")
    assert "/login?next=" in page.url  # the session really ended
    log_in(page, live_console, "ada", new)
    assert page.url == live_console.url + "/"


def test_dashboard_charts_on_demo_like_data(
    page,  # type: ignore[no-untyped-def]
    demo_console: LiveConsole,
    artifacts: Path,
) -> None:
    """The supervisor's dashboard draws its charts (inline SVG, no script, nothing from
    elsewhere) on the demo's sparse passages; screenshots of the page and of each chart."""
    requests: list[str] = []
    page.on("request", lambda r: requests.append(r.url))
    log_in(page, demo_console, "sam")
    assert page.url == demo_console.url + "/"
    for chart in ("chart-passages", "chart-backlog", "chart-deadletters", "chart-registry"):
        svg = page.locator(f"svg#{chart}")
        assert svg.is_visible(), chart
        box = svg.bounding_box()
        assert box is not None and box["width"] > 300 and box["height"] > 30, chart
    # 12 hours with passages, a segment per decision in each; a tooltip names hour and kind
    bars = page.locator("svg#chart-passages rect.bar")
    assert bars.count() == 14
    assert bars.first.locator("title").text_content() == "09:00 10/02/22: warning 1"
    assert page.locator("svg#chart-passages line.gap").count() == 11
    assert page.locator("svg#chart-backlog circle.point").count() == 24
    rows = page.locator("#camera-activity tr[data-camera]")
    assert rows.count() == 2
    assert page.locator("tr[data-camera='CAM-DEMO-1'] .read-rate").inner_text().startswith("88%")
    assert page.locator("tr[data-camera='CAM-DEMO-1'] svg.spark rect.bar").count() > 0
    assert page.locator("#registry-state").inner_text() == "up"
    assert page.locator("#deadletters-24h").inner_text() == "1"
    assert "not configured" in page.locator("#consumer-lag").inner_text()
    # everything came from the console itself
    assert all(u.startswith(demo_console.url) for u in requests)
    page.screenshot(path=str(artifacts / "dashboard-charts.png"), full_page=True)
    page.locator("#passages-per-hour").screenshot(path=str(artifacts / "chart-passages.png"))
    page.locator("#review-backlog").screenshot(path=str(artifacts / "chart-backlog.png"))
    page.locator("#camera-panel").screenshot(path=str(artifacts / "chart-cameras.png"))
    page.locator("#pipeline-panel").screenshot(path=str(artifacts / "chart-pipeline.png"))
