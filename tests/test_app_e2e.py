"""The app in a real browser: Debian's headless Chromium driven by Playwright (no browser download).
Type a request and see the tool step and the plot; run a text search, see the gallery, click a jet
and see its look-alikes. Screenshots are kept under tests/artifacts/."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

pytest.importorskip("pythia8mc")

CHROMIUM = Path("/usr/bin/chromium")
if not CHROMIUM.exists():
    pytest.skip(
        f"{CHROMIUM} is absent: install Debian's chromium (apt-get install chromium) for the browser test",
        allow_module_level=True,
    )

from playwright.sync_api import Page, expect, sync_playwright  # noqa: E402
from test_app import make_workspace, start_app  # noqa: E402

ARTIFACTS = Path(__file__).parent / "artifacts"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
TIMEOUT_MS = 60_000


@pytest.fixture(scope="module")
def url(tmp_path_factory) -> Iterator[str]:
    root = tmp_path_factory.mktemp("e2e-ws")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("JETFM_HOME", str(root))
        make_workspace(root)
        app, url = start_app()
        yield url
        app.close()


@pytest.fixture()
def page(tmp_path) -> Iterator[Page]:
    ARTIFACTS.mkdir(exist_ok=True)
    with sync_playwright() as p:
        context = p.chromium.launch_persistent_context(
            str(tmp_path / "profile"),  # a fresh user-data-dir
            executable_path=str(CHROMIUM),
            headless=True,
            args=CHROMIUM_ARGS,
            viewport={"width": 1280, "height": 1400},
        )
        context.set_default_timeout(TIMEOUT_MS)
        expect.set_options(timeout=TIMEOUT_MS)  # the first search embeds the jets and loads the text model
        try:
            yield context.pages[0] if context.pages else context.new_page()
        finally:
            context.close()


def test_chat_then_search_in_a_browser(url, page):
    page.goto(url)
    box = page.locator("#chat-input textarea")
    box.fill("plot the jet mass of tq")
    box.press("Enter")
    chat = page.locator("#chatbot")
    expect(chat.get_by_text("plot_observable").first).to_be_visible()
    expect(chat.get_by_text("echo plot the jet mass of tq")).to_be_visible()
    plot = chat.locator("img[src*='tq-mass']")
    expect(plot).to_be_visible()
    assert plot.evaluate("img => img.complete && img.naturalWidth") > 100  # the PNG loaded, not a broken link
    page.screenshot(path=str(ARTIFACTS / "app-chat.png"), full_page=True)

    page.get_by_role("tab", name="Search").click()
    # a class without numeric cuts: 20 of the 40 jets are tops, so the gallery is full (k = 12);
    # numeric cuts on this small sample leave fewer (tests/test_app.py checks those statuses)
    page.locator("#query textarea").fill("hadronic top quark jets")
    page.get_by_role("button", name="Search", exact=True).click()
    results = page.locator("#results img")
    expect(results).to_have_count(12)
    expect(page.locator("#search-status")).to_contain_text("12 jets of tq")
    page.screenshot(path=str(ARTIFACTS / "app-search.png"), full_page=True)

    results.first.click()
    expect(page.locator("#similar img")).to_have_count(12)
    expect(page.locator("#similar-status")).to_contain_text("most similar to jet")
    page.screenshot(path=str(ARTIFACTS / "app-similar.png"), full_page=True)
