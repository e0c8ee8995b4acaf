"""The web UI over real HTTP: the page, its assets, their security headers, and that
the page and its script agree with each other and with the API.

The page's behaviour in a browser (its views, the live stream, phone and desktop widths)
is tested in Chromium by tests/browser."""

import re
import tomllib
from fnmatch import fnmatch
from html.parser import HTMLParser
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration

WEB = Path(__file__).parents[2] / "interfaces" / "http" / "web"
CONTENT_TYPES = {
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".svg": "image/svg+xml",
}


class PageParser(HTMLParser):
    """What a page pulls in or runs: every src/href, inline scripts and styles,
    style and on* attributes, and the ids of its elements."""

    def __init__(self) -> None:
        super().__init__()
        self.references: list[str] = []
        self.inline: list[str] = []
        self.ids: set[str] = set()
        self._tag = ""

    def handle_starttag(self, tag, attrs):
        self._tag = tag
        attributes = dict(attrs)
        self.references += [v for k, v in attrs if k in ("src", "href", "srcset", "action")]
        self.inline += [f"{tag} {k}" for k, _ in attrs if k == "style" or k.startswith("on")]
        if tag == "style":
            self.inline.append("<style>")
        if tag == "meta" and attributes.get("http-equiv"):
            self.inline.append("meta http-equiv")
        if "id" in attributes:
            self.ids.add(attributes["id"])

    def handle_data(self, data):
        if self._tag == "script" and data.strip():
            self.inline.append("<script> with a body")

    def handle_endtag(self, tag):
        self._tag = ""


def parse(html: str) -> PageParser:
    parser = PageParser()
    parser.feed(html)
    return parser


def assert_security_headers(response) -> None:
    headers = response.headers
    directives = (d.strip().partition(" ") for d in headers["content-security-policy"].split(";"))
    policy = {name: value for name, _, value in directives}
    assert policy["default-src"] == "'self'"
    assert policy["script-src"] == "'self'"  # no 'unsafe-inline', no 'unsafe-eval'
    assert policy["frame-ancestors"] == "'none'"
    assert policy["object-src"] == "'none'"
    assert "unsafe" not in headers["content-security-policy"]
    assert headers["x-content-type-options"] == "nosniff"
    assert headers["referrer-policy"] == "no-referrer"
    assert headers["x-frame-options"] == "DENY"


async def test_page_is_html_with_security_headers_and_needs_no_token(api):
    r = await api.client.get("/")
    assert r.status_code == 200
    assert r.headers["content-type"] == "text/html; charset=utf-8"
    assert r.text.startswith("<!doctype html>")
    assert_security_headers(r)


async def test_page_pulls_in_only_same_origin_assets_and_runs_nothing_inline(api):
    page = parse((await api.client.get("/")).text)
    assert page.inline == []
    assert {"/static/app.js", "/static/app.css"} <= set(page.references)
    views = [r for r in page.references if r.startswith("#")]  # the page's own hash routes
    assert views and all(r.startswith("#/") for r in views), views
    for reference in set(page.references) - set(views):
        assert reference.startswith("/") and not reference.startswith("//"), reference
        r = await api.client.get(reference)
        assert r.status_code == 200, reference
        assert r.headers["content-type"] == CONTENT_TYPES[Path(reference).suffix], reference
        assert_security_headers(r)
        if (WEB / Path(reference).name).exists():
            assert r.content == (WEB / Path(reference).name).read_bytes()


@pytest.mark.parametrize("path", ["/", "/static/app.js", "/static/app.css"])
async def test_unchanged_files_are_revalidated_with_their_etag(api, path):
    first = await api.client.get(path)
    assert first.headers["cache-control"] == "no-cache"
    etag = first.headers["etag"]
    again = await api.client.get(path, headers={"If-None-Match": etag})
    assert again.status_code == 304 and again.content == b""
    stale = await api.client.get(path, headers={"If-None-Match": '"something-else"'})
    assert stale.status_code == 200 and stale.content == first.content


@pytest.mark.parametrize(
    "path",
    [
        "/static/nope.js",
        "/static/index.html",
        "/static/__init__.py",
        "/static/../routes/pages.py",
        "/static/%2e%2e%2fapp.py",
        "/static/web/app.js",
        "/static/",
        "/index.html",
    ],
)
async def test_unknown_static_paths_are_json_404(api, path):
    r = await api.client.get(path)
    assert r.status_code == 404, path
    assert r.headers["content-type"].startswith("application/json")
    assert set(r.json()) == {"error"}


async def test_the_pages_stay_out_of_the_openapi_description(api):
    paths = set((await api.client.get("/docs/openapi.json")).json()["paths"])
    assert "/crypto" in paths
    assert not {p for p in paths if p == "/" or p.startswith("/static")}


async def test_the_script_finds_every_element_it_needs_in_the_page(api):
    page = parse((await api.client.get("/")).text)
    script = (await api.client.get("/static/app.js")).text
    wanted = set(re.findall(r'\$\("([\w-]+)"\)', script))
    assert len(wanted) > 15
    assert wanted <= page.ids, wanted - page.ids


async def test_the_script_never_writes_html_and_calls_only_real_routes(api):
    script = (await api.client.get("/static/app.js")).text
    for sink in ("innerHTML", "outerHTML", "insertAdjacentHTML", "document.write", "eval("):
        assert sink not in script, sink
    called = set(re.findall(r'"(/(?:auth|crypto)[^"]*)"', script))
    called |= {
        f"/crypto/<symbol:str>{rest}" for rest in re.findall(r'cryptoPath\(\w+, "([^"]+)"', script)
    }
    routes = {route.uri for route in api.app.router.routes}
    assert {"/auth/login", "/auth/register", "/crypto", "/crypto/<symbol:str>/stats"} <= called
    assert called <= routes, called - routes


def test_every_file_of_the_page_is_shipped_in_the_wheel():
    """The files are package data: web/ is a package and pyproject's patterns cover them."""
    pyproject = tomllib.loads((WEB.parents[2] / "pyproject.toml").read_text())
    patterns = pyproject["tool"]["setuptools"]["package-data"]["*"]
    assert (WEB / "__init__.py").is_file()
    files = [f.name for f in WEB.iterdir() if f.is_file() and f.suffix != ".py"]
    assert {"index.html", "app.js", "app.css"} <= set(files)
    for name in files:
        assert any(fnmatch(name, pattern) for pattern in patterns), name
