"""Serving the explorer: on/off rules, the Content-Security-Policy, and what the static files may contain."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import httpx
import pytest

from app.config import Settings
from app.demo import explorer_link
from app.explorer.routes import CONTENT_SECURITY_POLICY, STATIC, explorer_enabled
from app.main import create_app
from tests import browser

ROOT = Path(__file__).resolve().parents[2]
SCRIPTS = sorted(STATIC.rglob("*.js"))


def settings(**values: Any) -> Settings:
    """Settings without a database: these apps are never started, only routed."""
    return Settings(**values)


async def get(path: str, **values: Any) -> httpx.Response:
    """GET `path` from an app built with these settings (no lifespan: static routes need no state)."""
    app = create_app(settings(**values))
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test") as http:
        return await http.get(path)


@pytest.mark.parametrize(
    ("values", "enabled"),
    [
        ({}, True),
        ({"env": "production"}, False),
        ({"env": "production", "explorer": True}, True),
        ({"env": "development", "explorer": False}, False),
    ],
)
async def test_on_in_development_off_in_production_unless_set(values: dict[str, Any], enabled: bool) -> None:
    assert explorer_enabled(settings(**values)) is enabled
    page = await get("/explorer", **values)
    script = await get("/explorer/static/js/main.js", **values)
    assert (page.status_code, script.status_code) == ((200, 200) if enabled else (404, 404))


def test_the_environment_variable_switches_it_on_in_production(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RECENGINE_ENV", "production")
    assert explorer_enabled(Settings()) is False
    monkeypatch.setenv("RECENGINE_EXPLORER", "true")
    assert explorer_enabled(Settings()) is True


async def test_page_and_assets_carry_a_strict_csp() -> None:
    page = await get("/explorer")
    assert page.headers["content-type"].startswith("text/html")
    assert page.headers["content-security-policy"] == CONTENT_SECURITY_POLICY
    policy = dict(part.strip().split(" ", 1) for part in CONTENT_SECURITY_POLICY.split(";"))
    assert policy["default-src"] == "'none'"
    assert policy["script-src"] == "'self'" and policy["style-src"] == "'self'" and policy["connect-src"] == "'self'"
    assert policy["frame-ancestors"] == "'none'"
    assert "unsafe" not in CONTENT_SECURITY_POLICY and "http" not in CONTENT_SECURITY_POLICY
    assert page.headers["x-content-type-options"] == "nosniff"
    assert page.headers["referrer-policy"] == "no-referrer"
    script = await get("/explorer/static/js/main.js")
    assert script.headers["content-security-policy"] == CONTENT_SECURITY_POLICY
    assert "javascript" in script.headers["content-type"]
    style = await get("/explorer/static/explorer.css")
    assert style.headers["content-type"].startswith("text/css")


async def test_graphql_has_no_explorer_headers() -> None:
    response = await get("/health")
    assert "content-security-policy" not in response.headers


async def test_files_outside_the_static_folder_are_not_served() -> None:
    for path in ("/explorer/static/../routes.py", "/explorer/static/%2e%2e/routes.py", "/explorer/static/nope.js"):
        assert (await get(path)).status_code == 404, path


def test_html_has_no_inline_script_style_or_handlers() -> None:
    html = (STATIC / "index.html").read_text(encoding="utf-8")
    scripts = re.findall(r"<script\b([^>]*)>(.*?)</script>", html, flags=re.DOTALL)
    assert scripts and all('src="/explorer/static/' in attrs and not body.strip() for attrs, body in scripts)
    assert "<style" not in html and " style=" not in html
    assert not re.search(r"\son[a-z]+=", html)
    for url in re.findall(r'(?:src|href)="([^"]+)"', html):
        assert url.startswith(("/explorer/static/", "#", "data:")), url


@pytest.mark.parametrize("path", SCRIPTS, ids=lambda p: str(p.relative_to(STATIC)))
def test_scripts_load_nothing_from_elsewhere_and_never_inject_markup(path: Path) -> None:
    source = path.read_text(encoding="utf-8")
    for banned in ("innerHTML", "outerHTML", "insertAdjacentHTML", "document.write", "eval(", "new Function"):
        assert banned not in source, banned
    for module in re.findall(r'^import .* from "([^"]+)";$', source, flags=re.MULTILINE):
        assert module.startswith(("./", "../")), module
    assert 'setAttribute("style"' not in source and 'fetch("http' not in source


def test_demo_link_carries_the_credential_in_the_fragment() -> None:
    link = explorer_link("127.0.0.1", 8000, "rk_abc+/=")
    assert link == "http://127.0.0.1:8000/explorer#token=rk_abc%2B%2F%3D"
    assert link.split("#", 1)[0] == "http://127.0.0.1:8000/explorer"


def test_browser_tests_are_skipped_with_the_reason_when_chromium_is_missing(tmp_path: Path) -> None:
    reason = browser.missing(tmp_path / "no-chromium")
    assert reason is not None and "Chromium not found" in reason and "apt-get install -y chromium" in reason
    mark = browser.requires_chromium.mark
    assert mark.name == "skipif" and mark.args == (browser.MISSING is not None,)
    assert mark.kwargs["reason"].startswith("browser tests skipped")


def test_demo_link_carries_a_user_token_for_the_demo_user(tmp_path: Path) -> None:
    from app.config import Settings
    from app.demo import DEMO_USER, demo_user_token
    from app.services import tokens

    settings = Settings(_env_file=None, data_dir=tmp_path)  # type: ignore[call-arg]
    principal = tokens.verify(settings, demo_user_token(settings))
    assert principal.subject == DEMO_USER == "1"
