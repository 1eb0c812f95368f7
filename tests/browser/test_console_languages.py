"""The console in Dutch and French (issue 21): a sample of pages, each opened in NL, shows no
English left, and each in FR none either.

What a page shows is its visible text, the text of its controls (placeholders, labels for
screen readers, image descriptions), what its charts tell a screen reader and their tooltips,
and its title. Left out, because they are not the console's words: what is marked as written
in English (``lang="en"``: the pipeline's explanations and the review reasons the console does
not word, recorded as they were given), what is marked not to be translated
(``translate="no"``: reasons typed by operators, audit details) and identifiers (``<code>``:
rule ids, audit action codes). English left is any English message of the console catalog
whose translation differs from it, or one of a few English words no Dutch or French sentence
uses. Screenshots of the dashboard, a review item and a notice in each language go to
``test-artifacts/`` (the notice document itself: tests/unit/test_notice_document.py,
``notice-nl.png`` and ``notice-fr.png``)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from fines.i18n import catalog_path
from tests.browser.conftest import LiveConsole
from tests.integration.test_console import PASSWORDS

pytestmark = pytest.mark.browser

ENGLISH_WORDS = ("the", "and", "with", "your", "this", "not", "yet", "from", "for", "no")
"""Words of English sentences that Dutch and French never use."""

PAGE_TEXT = """() => {
    const root = document.body.cloneNode(true);
    root.querySelectorAll('[lang="en"], [translate="no"], code, .langs, script, style')
        .forEach(e => e.remove());
    const attrs = [...root.querySelectorAll('[placeholder], [aria-label], [alt]')]
        .flatMap(e => ['placeholder', 'aria-label', 'alt'].map(a => e.getAttribute(a) || ''));
    // what a chart tells a screen reader, and its tooltips
    attrs.push(...[...root.querySelectorAll('svg title, svg desc')].map(e => e.textContent));
    const shown = document.createElement('div');
    shown.style.position = 'absolute';
    shown.appendChild(root);
    document.documentElement.appendChild(shown);
    const text = shown.innerText;
    shown.remove();
    return [document.title, text, ...attrs].join('\\n');
}"""


def english_messages(language: str) -> list[str]:
    """The console's English messages that ``language`` words differently (a placeholder
    stands for anything)."""
    from babel.messages.pofile import read_po

    with catalog_path(language, "console").open("rb") as f:
        cat = read_po(f)
    return [str(m.id) for m in cat if m.id and str(m.string) != str(m.id)]


def english_left(text: str, language: str) -> list[str]:
    found = []
    for msgid in english_messages(language):
        literal = re.split(r"\{\w+\}", msgid)
        if len("".join(literal).strip()) < 4:  # "of {n}": "of" is a Dutch word too
            continue
        parts = [re.escape(p) for p in literal]
        # a word joined by a hyphen is part of a name (the stage plate-reader), not a message
        pattern = r"(?<![\w-])" + r".+?".join(parts) + r"(?![\w-])"
        if re.search(pattern, text):
            found.append(msgid)
    for word in ENGLISH_WORDS:
        if re.search(rf"(?<!\w){word}(?!\w)", text, flags=re.IGNORECASE):
            found.append(word)
    return found


def log_in(page: Any, console: LiveConsole, username: str, language: str) -> None:
    page.goto(f"{console.url}/login?lang={language}")
    page.fill("#username", username)
    page.fill("#password", PASSWORDS[username])
    page.click("button[type=submit]")
    page.wait_for_load_state()


SAMPLE = {
    "olga": [
        "/",
        "/review",
        "/waiting",
        "/notices",
        "NOTICE",
        "/account/password",
        "/no-such-page",
    ],
    "sam": ["/users", "/payments"],
    "ada": ["/audit"],
}
"""Pages each user opens (NOTICE: the first notice of the list)."""


def pages_in(page: Any, console: LiveConsole, language: str) -> dict[str, str]:
    page.goto(f"{console.url}/login?lang={language}")
    shown = {"/login": str(page.evaluate(PAGE_TEXT))}
    for user, paths in SAMPLE.items():
        log_in(page, console, user, language)
        for path in paths:
            if path == "NOTICE":
                page.goto(console.url + "/notices")
                first = page.locator("#notices a[href^='/notices/']").first
                path = str(first.get_attribute("href"))
            page.goto(console.url + path)
            assert page.locator("html").get_attribute("lang") == language, path
            shown[f"{user} {path}"] = str(page.evaluate(PAGE_TEXT))
        page.context.clear_cookies()
    return shown


@pytest.mark.parametrize("language", ["nl", "fr"])
def test_a_sample_of_pages_shows_no_english(
    page: Any, live_console: LiveConsole, artifacts: Path, language: str
) -> None:
    shown = pages_in(page, live_console, language)
    left = {where: english_left(text, language) for where, text in shown.items()}
    left = {where: found for where, found in left.items() if found}
    assert not left, left
    # the sample is not empty: each page shows words of its language
    assert all(len(text) > 40 for text in shown.values()), shown
    log_in(page, live_console, "olga", language)
    page.goto(live_console.url + "/")
    page.screenshot(path=str(artifacts / f"dashboard-{language}.png"), full_page=True)
    page.goto(live_console.url + "/review")
    item = page.locator(".review-item.current")
    item.screenshot(path=str(artifacts / f"review-item-{language}.png"))
    page.goto(live_console.url + "/notices")
    page.locator("#notices a[href^='/notices/']").first.click()
    page.wait_for_load_state()
    page.screenshot(path=str(artifacts / f"notice-page-{language}.png"), full_page=True)


def test_english_left_is_found() -> None:
    """The check itself: English words and messages are caught, Dutch passes."""
    assert english_left("Wachtrij · Review queue", "nl") == ["Review queue"]
    assert "Too many failed logins; try again in {seconds} seconds." in english_left(
        "Too many failed logins; try again in 30 seconds.", "nl"
    )
    assert english_left("Kies the kenteken", "nl") == ["the"]
    assert english_left("Controlewachtrij (3) · kenteken 1-ABC-123", "nl") == []


def test_refusals_are_worded_in_the_operators_language(
    page: Any, live_console: LiveConsole
) -> None:
    page.goto(f"{live_console.url}/login?lang=nl")
    page.fill("#username", "sam")
    page.fill("#password", "not-the-password")
    page.click("button[type=submit]")
    assert page.locator("#login-error").inner_text() == "Verkeerde gebruikersnaam of wachtwoord."
    log_in(page, live_console, "sam", "nl")
    page.goto(live_console.url + "/payments")
    page.fill("input[name=reference]", "+++123/4567/89002+++")
    page.click("#payment button")
    page.wait_for_load_state()
    flash = page.locator("#flash.err").inner_text()
    assert "geen enkel bericht heeft deze referentie" in flash, flash
    page.goto(live_console.url + "/review/999999/plate/0?lang=fr")
    assert "pas de zone de plaque" in page.locator("#error-message").inner_text()
