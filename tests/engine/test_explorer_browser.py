"""The explorer in a real headless Chromium against a live server on the trained MovieLens slice.

The server runs in a thread on a copy of the slice's database (these tests log events), with
authentication on; the page gets the admin key through the URL fragment, as `make demo` prints it.
"""

from __future__ import annotations

import base64
import json
import os
import re
import secrets
import shutil
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import psycopg2
import pytest

from app import embedded
from app.context import AppState
from tests.browser import Console, launch, requires_chromium
from tests.conftest import make_settings
from tests.hardening.servers import thread_server

pytestmark = requires_chromium

ROOT = Path(__file__).resolve().parents[2]
DOC_IMAGES = ROOT / "docs" / "img"
# Set to 1 to refresh the README's screenshots (docs/img) from this run.
UPDATE_DOCS = os.environ.get("RECENGINE_UPDATE_SCREENSHOTS") == "1"
KEY = f"rk_explorer_{secrets.token_hex(12)}"
DESKTOP = {"width": 1280, "height": 900}
PHONE = {"width": 390, "height": 844}


def clone_database(uri: str, source: str, target: str) -> str:
    """CREATE DATABASE target TEMPLATE source (closing the source's connections first)."""
    conn = psycopg2.connect(dbname="postgres", user="postgres", host=embedded.socket_dir(uri))
    conn.autocommit = True
    with conn.cursor() as cur:
        cur.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s", (source,))
        cur.execute(f'DROP DATABASE IF EXISTS "{target}" WITH (FORCE)')
        cur.execute(f'CREATE DATABASE "{target}" TEMPLATE "{source}"')
    conn.close()
    return embedded.async_url(uri, target)


@pytest.fixture(scope="module")
async def explorer_db(ml_state: AppState, pg_uri: str) -> str:
    """A copy of the trained slice, so the clicks logged here never reach the engine tests' data."""
    await ml_state.engine.dispose()
    return clone_database(pg_uri, "recengine_ml", "recengine_explorer")


@pytest.fixture(scope="module")
def live(explorer_db: str) -> Iterator[str]:
    """The app (auth on, explorer on by default in development) serving the copy on 127.0.0.1."""
    with thread_server(make_settings(explorer_db, admin_api_key=KEY)) as url:
        yield url


@pytest.fixture(scope="module")
async def browser() -> AsyncIterator[Any]:
    """One headless Chromium for the module."""
    async for chromium in launch():
        yield chromium


@pytest.fixture
async def page(browser: Any) -> AsyncIterator[Any]:
    """A fresh browser context (its own session storage) and page."""
    context = await browser.new_context(viewport=DESKTOP)
    tab = await context.new_page()
    tab.set_default_timeout(60_000)
    yield tab
    await tab.unroute_all(behavior="ignoreErrors")  # a stand-in route may still be forwarding a request
    await context.close()


async def api(url: str, query: str) -> dict[str, Any]:
    """A GraphQL call with the admin key, outside the browser."""
    async with httpx.AsyncClient(timeout=60) as http:
        response = await http.post(f"{url}/graphql", json={"query": query}, headers={"Authorization": f"Bearer {KEY}"})
    body: dict[str, Any] = response.json()
    assert "errors" not in body, body
    return body["data"]


async def open_view(page: Any, url: str, route: str, *, token: str | None = KEY) -> None:
    """Open /explorer (with the key in the fragment) and go to `route`; returns once the view has rendered."""
    await page.goto("about:blank")  # a full load each time, never a same-document fragment change
    await page.goto(f"{url}/explorer#token={token}" if token else f"{url}/explorer")
    await page.wait_for_selector("body[data-started=true]")
    if route:  # the first view is rendered by now: unmark it, so the wait below sees only the new one
        await page.evaluate(
            "r => { document.querySelector('#view > section').dataset.ready = ''; location.hash = r; }", route
        )
    view = (route or "#/user").split("/")[1].split("?")[0]
    await page.wait_for_selector(f"section.view-{view}[data-ready=true]")


async def shoot(page: Any, tmp_path: Path, name: str, *, readme: bool = False) -> None:
    """Screenshot into the test's directory (and into docs/img when refreshing the README's images)."""
    target = tmp_path / f"{name}.png"
    await page.screenshot(path=str(target), full_page=True)
    assert target.stat().st_size > 10_000
    if readme and UPDATE_DOCS:
        DOC_IMAGES.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(target, DOC_IMAGES / f"explorer-{name}.png")


async def attr_list(page: Any, selector: str, name: str) -> list[str]:
    """`data-<name>` of every element matching `selector`, in document order."""
    values: list[str] = await page.eval_on_selector_all(selector, f"els => els.map(e => e.dataset.{name})")
    return values


async def test_token_from_the_fragment_is_kept_in_session_storage_and_removed_from_the_url(
    page: Any, live: str
) -> None:
    console = Console(page)
    await open_view(page, live, "")
    assert "token" not in page.url and KEY not in page.url
    assert await page.evaluate("() => sessionStorage.getItem('recengine.explorer.credential')") == KEY
    assert "API key" in await page.inner_text("#credential-status")
    features = await page.inner_text("#features")
    assert "by introspection" in features and "collaborative similar items yes" in features
    assert console.errors == []


async def test_user_view_cards_explanations_and_a_click_that_refreshes(page: Any, live: str, tmp_path: Path) -> None:
    console = Console(page)
    await open_view(page, live, "#/user/1")
    cards = page.locator("#cards li.card")
    assert await cards.count() == 10
    assert [int(r) for r in await attr_list(page, "#cards li.card", "rank")] == list(range(1, 11))
    for i in range(10):
        card = cards.nth(i)
        assert (await card.locator(".explanation").inner_text()).strip()
        assert await card.locator(".chips li.chip").count() >= 1
        assert (await card.locator(".score").inner_text()).startswith("score ")
    anchors = page.locator("#cards a[data-anchor]")
    assert await anchors.count() >= 1
    assert (await anchors.first.get_attribute("href")).startswith("#/item/")
    assert "Model version" in await page.inner_text("#rec-meta")
    assert await page.locator("#history-table tbody tr").count() == 20
    await shoot(page, tmp_path, "user", readme=True)

    before = await attr_list(page, "#cards li.card", "contentId")
    first_request = await cards.first.get_attribute("data-request-id")
    total = (await api(live, '{ events(userId: "1", first: 1) { totalCount } }'))["events"]["totalCount"]
    await cards.first.locator("button.card-title").focus()
    await page.keyboard.press("Enter")  # keyboard activation, as a keyboard or screen-reader user would
    await page.wait_for_function("() => document.getElementById('notice').textContent.includes('Logged a click')")
    await page.wait_for_function(
        "old => document.querySelector('#cards li.card')?.dataset.requestId !== old", arg=first_request
    )

    newest = await api(
        live, '{ events(userId: "1", first: 1) { totalCount edges { node { eventType contentId metadata } } } }'
    )
    assert newest["events"]["totalCount"] == total + 1
    node = newest["events"]["edges"][0]["node"]
    assert (node["eventType"], node["contentId"], node["metadata"]["source"]) == ("click", before[0], "explorer")
    after = await attr_list(page, "#cards li.card", "contentId")
    assert len(after) == 10 and before[0] not in after and after != before
    assert "click" in await page.locator("#history-table tbody tr").first.inner_text()
    await shoot(page, tmp_path, "user-after-click")
    assert console.errors == []


async def test_strategy_selector_changes_the_result(page: Any, live: str) -> None:
    await open_view(page, live, "#/user/1")
    await page.select_option("#strategy", "POPULAR")
    await page.click("section.view-user form button[type=submit]")
    await page.wait_for_selector("section.view-user[data-ready=true] #rec-meta >> text=popular")
    assert await page.locator("#cards li.card").count() == 10
    assert "strategy=POPULAR" in page.url


async def test_item_view_shows_facts_and_similar_items(page: Any, live: str, tmp_path: Path) -> None:
    console = Console(page)
    await open_view(page, live, "#/item/1")
    assert "Toy Story" in await page.inner_text("#item-title")
    assert "video" in await page.inner_text("dl.facts")
    found = await api(live, '{ similarContent(contentId: "1", count: 10) { contentId } }')
    expected = [s["contentId"] for s in found["similarContent"]]
    assert await attr_list(page, "#similar-embedding li", "contentId") == expected
    found = await api(live, '{ similarContent(contentId: "1", count: 10, by: COLLABORATIVE) { contentId } }')
    collaborative = [s["contentId"] for s in found["similarContent"]]
    assert len(collaborative) == 10
    assert await attr_list(page, "#similar-collaborative li", "contentId") == collaborative
    await shoot(page, tmp_path, "item", readme=True)
    await page.locator("#similar-embedding li a").first.click()
    await page.wait_for_url(f"**#/item/{expected[0]}")
    await page.wait_for_function(
        "() => document.querySelector('section.view-item[data-ready=true] #item-title')?.textContent !== 'Toy Story (1995)'"
    )
    assert await attr_list(page, "#similar-embedding li", "contentId") != expected
    assert console.errors == []


@pytest.mark.parametrize("mode", ["TEXT", "SEMANTIC", "HYBRID"])
async def test_search_view(page: Any, live: str, tmp_path: Path, mode: str) -> None:
    await open_view(page, live, "#/search")
    await page.fill("#search-text", "toy story")
    await page.check(f"input[name=mode][value={mode}]")
    await page.click("form[role=search] button[type=submit]")
    await page.wait_for_selector("section.view-search[data-ready=true] #search-results ol li")
    titles = await page.eval_on_selector_all("#search-results li a", "e => e.map(x => x.textContent)")
    assert any("Toy Story" in t for t in titles)
    assert f"mode={mode}" in page.url
    await shoot(page, tmp_path, f"search-{mode.lower()}")


async def test_model_view_marks_the_active_version(page: Any, live: str, tmp_path: Path) -> None:
    await open_view(page, live, "#/model")
    active = page.locator("#versions-table tr[aria-current=true]")
    assert await active.count() == 1
    versions = (await api(live, "{ modelVersions { id status } }"))["modelVersions"]
    assert await active.get_attribute("data-version") == str(next(v["id"] for v in versions if v["status"] == "active"))
    assert "active" in await active.inner_text()
    await shoot(page, tmp_path, "model")


async def test_phone_viewport_has_no_sideways_scrolling(browser: Any, live: str, tmp_path: Path) -> None:
    context = await browser.new_context(viewport=PHONE, is_mobile=True, has_touch=True)
    page = await context.new_page()
    page.set_default_timeout(60_000)
    for route in ("#/user/1", "#/item/1", "#/search?q=toy&mode=TEXT", "#/model"):
        await open_view(page, live, route)
        assert await page.evaluate("() => document.documentElement.scrollWidth <= window.innerWidth"), route
    await open_view(page, live, "#/user/1")
    await shoot(page, tmp_path, "user-phone")
    await context.close()


async def test_csp_blocks_inline_script_in_the_browser(page: Any, live: str) -> None:
    await open_view(page, live, "")
    ran = await page.evaluate(
        """() => { const s = document.createElement('script'); s.textContent = 'window.__injected = 1';
                   document.body.append(s); return window.__injected === 1; }"""
    )
    assert ran is False


async def test_without_a_credential_the_page_says_so(page: Any, live: str) -> None:
    await open_view(page, live, "#/user/1", token=None)
    assert "No credential" in await page.inner_text("#credential-status")
    assert "credential" in await page.inner_text("#alert")


async def test_a_key_pasted_into_the_form_is_used(page: Any, live: str) -> None:
    await open_view(page, live, "#/model", token=None)
    await page.fill("#credential", KEY)
    await page.click("#credential-form button[type=submit]")
    await page.wait_for_selector("section.view-model[data-ready=true] #versions-table")
    assert await page.evaluate("() => sessionStorage.getItem('recengine.explorer.credential')") == KEY
    assert await page.input_value("#credential") == ""


async def test_features_found_by_probes_when_introspection_is_off(browser: Any, explorer_db: str) -> None:
    settings = make_settings(explorer_db, admin_api_key=KEY, introspection=False)
    with thread_server(settings) as url:
        context = await browser.new_context()
        page = await context.new_page()
        page.set_default_timeout(60_000)
        await open_view(page, url, "#/user/1")
        features = await page.inner_text("#features")
        assert "by probes" in features and "collaborative similar items yes" in features
        assert await page.locator("#cards li.card").count() == 10
        await context.close()


def fake_user_token(user_id: str) -> str:
    """A token shaped like #12's signed user tokens (header.payload.signature); this server does not accept it."""

    def part(value: dict[str, Any]) -> str:
        return base64.urlsafe_b64encode(json.dumps(value).encode()).rstrip(b"=").decode()

    return f"{part({'alg': 'HS256', 'typ': 'JWT'})}.{part({'sub': user_id, 'exp': 4102444800})}.c2ln"


async def test_a_user_token_in_the_fragment_opens_that_users_view(page: Any, live: str) -> None:
    await open_view(page, live, "", token=fake_user_token("42"))
    assert page.url.endswith("#/user/42")
    assert "user token for user 42" in await page.inner_text("#credential-status")
    await page.goto(f"{live}/explorer#token={fake_user_token('43')}")  # same document: only the fragment changes
    await page.wait_for_function(
        "() => document.querySelector('section.view-user[data-ready=true] h2')?.textContent === 'User 43'"
    )
    assert "user token for user 43" in await page.inner_text("#credential-status")
    assert await page.input_value("#user-id") == "43"
    assert "did not accept the credential" in await page.inner_text("#alert")  # unsigned: UNAUTHENTICATED


# What #15 adds to the schema, as this page expects to see it. The server of this branch lacks it, so
# the browser's network layer stands in for those parts: it answers the feature query as a server with
# them would, and forwards every other request to the real server minus the new fields.
FUTURE_FEATURES = {
    "eventInput": {"inputFields": [{"name": n} for n in ("userId", "contentId", "eventType", "recommendationId")]},
    "query": {
        "fields": [
            {"name": "recommendations", "args": [{"name": "userId"}, {"name": "count"}, {"name": "after"}]},
            {"name": "recommendationStats", "args": [{"name": "since"}, {"name": "groupBy"}]},
            {"name": "similarContent", "args": [{"name": "contentId"}, {"name": "count"}]},
        ]
    },
    "result": {"fields": [{"name": "requestId"}, {"name": "experiment"}]},
    "strategy": {
        "enumValues": [{"name": s} for s in ("HYBRID", "COLLABORATIVE", "CONTENT_BASED", "POPULAR", "TRENDING")]
    },
}
STATS = [
    {"strategy": "HYBRID", "experiment": "explorer-ab", "arm": "A", "impressions": 200, "clicks": 12, "ctr": 0.06},
    {"strategy": "HYBRID", "experiment": "explorer-ab", "arm": "B", "impressions": 180, "clicks": 18, "ctr": 0.1},
]


class FutureServer:
    """Playwright route handler: #15's fields on top of the live server; records what the page sent."""

    def __init__(self) -> None:
        self.after: list[str] = []
        self.clicks: list[dict[str, Any]] = []

    async def __call__(self, route: Any) -> None:
        body = json.loads(route.request.post_data)
        query: str = body["query"]
        if "ExplorerFeatures" in query:
            await route.fulfill(json={"data": FUTURE_FEATURES})
        elif "ExplorerStats" in query:
            await route.fulfill(json={"data": {"recommendationStats": STATS}})
        elif "ExplorerRecommendations" in query:
            self.after += re.findall(r'after: "([^"]+)"', query)
            body["query"] = re.sub(r', after: "[^"]+"', "", query).replace("experiment { name arm }", "")
            response = await route.fetch(post_data=json.dumps(body))
            data = await response.json()
            data["data"]["recommendations"]["experiment"] = {"name": "explorer-ab", "arm": "B"}
            await route.fulfill(response=response, json=data)
        elif "ExplorerClick" in query:
            self.clicks.append(dict(body["variables"]["input"]))
            body["variables"]["input"].pop("recommendationId", None)
            await route.continue_(post_data=json.dumps(body))
        else:
            await route.continue_()


async def test_optional_features_switch_on_when_the_schema_has_them(page: Any, live: str, tmp_path: Path) -> None:
    server = FutureServer()
    await page.route("**/graphql", server)
    await open_view(page, live, "#/user/1")
    features = await page.inner_text("#features")
    for name in ("click attribution yes", "paging yes", "experiments yes", "recommendation stats yes"):
        assert name in features
    assert "Experiment explorer-ab / B" in await page.inner_text("#rec-meta")

    first_request = await page.locator("#cards li.card").first.get_attribute("data-request-id")
    await page.click("#more")
    await page.wait_for_function("() => document.querySelectorAll('#cards li.card').length === 20")
    assert server.after == [first_request]
    second_request = await page.locator("#cards li.card").nth(10).get_attribute("data-request-id")
    assert second_request != first_request
    assert await page.evaluate(  # focus moves to the first new card
        "() => document.activeElement.closest('li.card') === document.querySelectorAll('#cards li.card')[10]"
    )

    card = page.locator("#cards li.card").nth(10)
    clicked = await card.get_attribute("data-content-id")
    await card.locator("button.card-title").click()
    await page.wait_for_function("() => document.getElementById('notice').textContent.includes('Logged a click')")
    assert [(c["contentId"], c["recommendationId"]) for c in server.clicks] == [(clicked, second_request)]

    await page.evaluate("() => { location.hash = '#/model'; }")
    await page.wait_for_selector("section.view-model[data-ready=true]")
    assert await page.locator("#ctr-chart rect.bar").count() == 2
    assert await page.locator("#stats-table tbody tr").count() == 2
    await shoot(page, tmp_path, "model-with-stats")


UNNAMED_CONTROLS = """() => [...document.querySelectorAll('input, select, button, a[href]')]
    .filter(e => !(e.labels?.length || e.getAttribute('aria-label') || e.textContent.trim()))
    .map(e => e.outerHTML)"""


async def test_every_control_is_named_and_the_skip_link_comes_first(page: Any, live: str) -> None:
    for route in ("#/user/1", "#/item/1", "#/search?q=toy&mode=TEXT", "#/model"):
        await open_view(page, live, route)
        assert await page.evaluate(UNNAMED_CONTROLS) == [], route
        assert await page.evaluate("() => document.querySelectorAll('h1').length") == 1
        assert await page.evaluate("() => document.querySelectorAll('h2').length") == 1
    fresh = await page.context.new_page()  # a fresh load: nothing focused yet
    await open_view(fresh, live, "")
    await fresh.keyboard.press("Tab")
    assert await fresh.evaluate("() => document.activeElement.textContent") == "Skip to content"
    await fresh.keyboard.press("Enter")
    assert await fresh.evaluate("() => document.activeElement.id") == "main"
