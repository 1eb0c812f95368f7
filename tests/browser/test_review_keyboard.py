"""The review queue by keyboard alone, and axe-core on every console page (issue 21).

A console over 21 queued items (pending notices to confirm, passages with candidate vehicles to
choose between, unknown plates to reject), served for real and driven in Chromium. The time per
item goes to ``test-artifacts/review-keyboard-timing.json`` (a figure, not an assertion).
axe-core is vendored in ``tests/browser/assets`` (from the npm registry, never a CDN)."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.browser.conftest import LiveConsole, serve_with_div
from tests.conftest import DEMO
from tests.integration.test_console import PASSWORDS

pytestmark = pytest.mark.browser
AXE = Path(__file__).resolve().parent / "assets" / "axe.min.js"
PLATE_BOX = (205, 288, 390, 88)  # where fixtures/demo/render.py draws the plate
KINDS = ("confirm", "choose", "reject")
ITEMS = 21


def _candidates() -> tuple[Any, ...]:
    """The candidates of ``_candidate_reasons`` as the adapter records them (typed)."""
    from lez.core.events import CandidateVehicle

    return (
        CandidateVehicle(
            plate="2-KLM-456", country="BE", source="lookalike", detail="1/7", make="Toyota",
            model="Yaris", fuel="petrol", euro_norm=6, outcome="compliant",
        ),
        CandidateVehicle(
            plate="TN-249KD", country="SK", source="other_country", fuel="diesel", euro_norm=4,
            outcome="violation",
        ),
    )  # fmt: skip


def _candidate_reasons() -> tuple[str, ...]:
    return (
        "registered look-alike (1/7 confusion): 2-KLM-456 (BE): Toyota Yaris, petrol Euro 6, "
        "would be compliant",
        "registered under another country the read fits: TN-249KD (SK): a vehicle, diesel "
        "Euro 4, would be violation",
    )


@pytest.fixture(scope="module")
def queue_console(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveConsole]:
    from fines.db import make_engine, migrate, session_factory
    from fines.service import FinesPolicy, packaged_rules, record_decision
    from lez.core.events import FrameRead
    from tests.integration.test_fines_db import decision

    db_path = tmp_path_factory.mktemp("browser-queue") / "lez.db"
    url = f"sqlite:///{db_path}"
    migrate(url)
    engine = make_engine(url)
    sessions = session_factory(engine)
    policy = FinesPolicy(rules=packaged_rules())
    jpegs = tuple((DEMO / "frames" / f).read_bytes() for f in ("d00_0.jpg", "d00_1.jpg"))
    with sessions.begin() as s:
        for n in range(ITEMS):
            kind = KINDS[n % 3]
            # a plate of its own per item: no vehicle's notice holds another's back
            plate = {"confirm": "1-ABC-1", "choose": "1-ABC-7", "reject": "1-QQQ-9"}[
                kind
            ] + f"{n:02d}"
            d = decision(
                plate,
                f"2023-0{1 + n // 9}-{1 + n % 9:02d}T08:10:00+02:00",
                "review" if kind == "reject" else "violation",
                seq=10 * n,
                confidence=0.55,
            )
            reads = tuple(
                FrameRead(seq=10 * n + k, text=plate.replace("-", ""), bbox=PLATE_BOX)
                for k in range(2)
            )
            chars = (0.99, 0.98, 0.97, 0.96, 0.95, 0.41, 0.9)
            passage = d.passage.model_copy(
                update={"evidence": jpegs, "reads": reads, "char_confidences": chars}
            )
            update: dict[str, Any] = {"passage": passage}
            if kind == "choose":
                update["review_reasons"] = _candidate_reasons()
                if n % 2:  # half of them as an older adapter recorded them: reasons only
                    update["candidates"] = _candidates()
            record_decision(s, d.model_copy(update=update), policy)
    with serve_with_div(sessions, "browser-queue", db_path) as console:
        yield console
    engine.dispose()


def log_in(page: Any, console: LiveConsole, username: str) -> None:
    page.goto(console.url + "/login")
    page.fill("#username", username)
    page.fill("#password", PASSWORDS[username])
    page.click("button[type=submit]")
    page.wait_for_load_state()


def serious_violations(page: Any) -> list[dict[str, Any]]:
    """axe-core's serious and critical violations of the page as it is now."""
    page.add_script_tag(path=str(AXE))
    found: list[dict[str, Any]] = page.evaluate(
        """async () => {
            const r = await axe.run(document, {resultTypes: ["violations"]});
            return r.violations
              .filter(v => v.impact === "serious" || v.impact === "critical")
              .map(v => ({id: v.id, impact: v.impact, help: v.help,
                          nodes: v.nodes.slice(0, 5).map(n => n.target.join(" "))}));
        }"""
    )
    return found


def current_id(page: Any) -> str:
    return str(page.evaluate("() => document.activeElement.closest('.review-item')?.dataset.id"))


def test_the_queue_is_ordered_by_deadline_and_shows_it(
    page: Any, queue_console: LiveConsole
) -> None:  # noqa: E501
    log_in(page, queue_console, "olga")
    page.goto(queue_console.url + "/review")
    deadlines = page.locator("#queue td.deadline").all_inner_texts()
    assert len(deadlines) == ITEMS
    assert deadlines == sorted(deadlines)
    cards = page.locator(".review-item")
    assert cards.count() == ITEMS
    first = cards.nth(0)
    # the first item is open and has focus; its frames show the plate enlarged beside them
    assert current_id(page) == first.get_attribute("data-id")
    crops = first.locator("img.crop")
    assert crops.count() == 2
    sizes = crops.evaluate_all("imgs => imgs.map(i => [i.naturalWidth, i.naturalHeight])")
    assert all(w >= 390 and h > 0 for w, h in sizes)
    assert page.locator("#shortcuts").is_visible()


@pytest.mark.parametrize("language", ["nl", "fr"])
def test_a_review_item_with_candidates_in_dutch_and_french(
    page: Any, queue_console: LiveConsole, artifacts: Path, language: str
) -> None:
    """Screenshots of an item with candidate vehicles, in NL and FR (before the keyboard
    test below reviews them)."""
    log_in(page, queue_console, "olga")
    page.goto(f"{queue_console.url}/review?lang={language}")
    item = page.locator(".review-item:has(table.candidates)").first
    item.scroll_into_view_if_needed()
    rows = item.locator("tr.candidate")
    assert rows.count() == 2
    words = {"nl": ("benzine", "in orde"), "fr": ("essence", "conforme")}[language]
    assert all(w in rows.nth(0).inner_text() for w in words)
    item.screenshot(path=str(artifacts / f"review-item-candidates-{language}.png"))


def test_twenty_items_reviewed_by_keyboard_alone(
    page: Any, queue_console: LiveConsole, artifacts: Path
) -> None:
    log_in(page, queue_console, "olga")
    page.goto(queue_console.url + "/review")
    choose = page.locator(".review-item.current")
    for _ in range(ITEMS):
        if page.locator(".review-item.current table.candidates").count():
            choose = page.locator(".review-item.current")
            break
        page.keyboard.press("j")
    choose.screenshot(path=str(artifacts / "review-item.png"))
    page.goto(queue_console.url + "/review")
    times: list[dict[str, Any]] = []
    for _ in range(20):
        item = page.locator(".review-item.current")
        item_id = item.get_attribute("data-id")
        assert current_id(page) == item_id, "the next item opens with focus"
        started = time.perf_counter()
        if item.locator("form.choose").count():
            action = "choose candidate"
            rows = item.locator("tr.candidate")
            assert rows.count() == 2
            assert "petrol" in rows.nth(0).inner_text() and "compliant" in rows.nth(0).inner_text()
            page.keyboard.press("1")
        elif item.locator("form.confirm").count():
            action = "confirm"
            page.keyboard.press("c")
        else:
            action = "reject"
            page.keyboard.press("x")
            page.keyboard.press("ArrowDown")
            page.keyboard.press("Enter")
        page.wait_for_load_state()
        page.wait_for_function(
            "id => !document.querySelector(`.review-item[data-id='${id}']`)", arg=item_id
        )
        times.append({"item": item_id, "action": action, "seconds": time.perf_counter() - started})
        assert page.locator("#flash.ok").count() == 1, page.locator("#flash").inner_text()
    assert page.locator(".review-item").count() == ITEMS - 20
    assert {t["action"] for t in times} == {"confirm", "choose candidate", "reject"}
    mean = sum(t["seconds"] for t in times) / len(times)
    (artifacts / "review-keyboard-timing.json").write_text(
        json.dumps({"items": times, "mean_seconds_per_item": mean}, indent=1)
    )


def test_the_console_in_french_and_dutch(
    page: Any, queue_console: LiveConsole, artifacts: Path
) -> None:  # noqa: E501
    log_in(page, queue_console, "olga")
    page.goto(queue_console.url + "/review?lang=nl")
    assert page.locator("html").get_attribute("lang") == "nl"
    assert page.locator("h1").inner_text().startswith("Controlewachtrij")
    page.goto(queue_console.url + "/review")  # the choice stays for the session
    assert page.locator("nav").inner_text().count("Berichten") == 1
    page.goto(queue_console.url + "/review?lang=fr")
    assert page.locator("h1").inner_text().startswith("File de vérification")
    page.screenshot(path=str(artifacts / "review-fr.png"), full_page=True)


PAGES = {
    "olga": ["/", "/review", "/notices", "/account/password"],
    "sam": ["/users", "/payments", "/notices"],
    "ada": ["/audit"],
}


def test_axe_finds_no_serious_violation_on_any_page(
    browser: Any, queue_console: LiveConsole
) -> None:
    # axe is injected as a script of the test's own: the console's CSP (script-src 'self') is
    # bypassed for it, in this browser context only
    context = browser.new_context(viewport={"width": 1400, "height": 1000}, bypass_csp=True)
    page = context.new_page()
    try:
        page.goto(queue_console.url + "/login")
        report: dict[str, list[dict[str, Any]]] = {"/login": serious_violations(page)}
        for user, paths in PAGES.items():
            log_in(page, queue_console, user)
            for path in paths:
                page.goto(queue_console.url + path)
                report[f"{user} {path}"] = serious_violations(page)
            href = page.locator("#notices a[href^='/notices/']").first
            if user == "sam" and href.count():
                page.goto(queue_console.url + str(href.get_attribute("href")))
                report[f"{user} notice"] = serious_violations(page)
            page.goto(queue_console.url + "/no-such-page")
            report[f"{user} 404"] = serious_violations(page)
            context.clear_cookies()
    finally:
        context.close()
    bad = {where: v for where, v in report.items() if v}
    assert not bad, json.dumps(bad, indent=1)
