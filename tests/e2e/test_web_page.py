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
# Every file the page pulls in (its script's ES modules too), as the package holds them.
ASSETS = sorted(f.name for f in WEB.iterdir() if f.suffix in CONTENT_TYPES)
MODULES = [name for name in ASSETS if name.endswith(".js")]
# A static import of a module next to it: `import ... from "./name.js";`
IMPORT = re.compile(r'^import\s[^;]*?\sfrom\s"\./([\w-]+\.js)";', re.MULTILINE)


class PageParser(HTMLParser):
    """What a page pulls in or runs: every src/href, inline scripts and styles,
    style and on* attributes, and the ids of its elements."""

    def __init__(self) -> None:
        super().__init__()
        self.references: list[str] = []
        self.inline: list[str] = []
        self.ids: set[str] = set()
        self.scripts: list[dict[str, str | None]] = []
        self.preloaded: list[str] = []
        self._tag = ""

    def handle_starttag(self, tag, attrs):
        self._tag = tag
        attributes = dict(attrs)
        self.references += [v for k, v in attrs if k in ("src", "href", "srcset", "action")]
        self.inline += [f"{tag} {k}" for k, _ in attrs if k == "style" or k.startswith("on")]
        if tag == "script":
            self.scripts.append(attributes)
        if tag == "link" and attributes.get("rel") == "modulepreload":
            self.preloaded.append(attributes["href"] or "")
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


async def test_the_script_is_es_modules_all_imported_from_the_entry_and_preloaded(api):
    """One <script type="module"> (app.js); the modules it imports from next to it, and
    theirs, are every other .js file of the page (none left over), each preloaded."""
    page = parse((await api.client.get("/")).text)
    assert page.scripts == [{"type": "module", "src": "/static/app.js"}]
    imported: set[str] = set()
    waiting = ["app.js"]
    while waiting:
        r = await api.client.get(f"/static/{waiting.pop()}")
        assert r.status_code == 200
        found = set(IMPORT.findall(r.text))
        # No bare specifier ("lit", "chart.js"): those need a build step or an import map.
        assert len(re.findall(r"^import\s", r.text, re.MULTILINE)) == len(found), r.url
        waiting += found - imported
        imported |= found
    assert len(MODULES) > 5
    assert imported == set(MODULES) - {"app.js"}
    assert sorted(page.preloaded) == sorted(f"/static/{name}" for name in imported)


async def test_every_file_of_the_page_is_served_with_its_type_and_headers(api):
    for name in ASSETS:
        r = await api.client.get(f"/static/{name}")
        assert r.status_code == 200, name
        assert r.headers["content-type"] == CONTENT_TYPES[Path(name).suffix], name
        assert r.content == (WEB / name).read_bytes(), name
        assert_security_headers(r)


async def test_unchanged_files_are_revalidated_with_their_etag(api):
    for path in ["/", *(f"/static/{name}" for name in ASSETS)]:
        first = await api.client.get(path)
        assert first.headers["cache-control"] == "no-cache", path
        etag = first.headers["etag"]
        again = await api.client.get(path, headers={"If-None-Match": etag})
        assert again.status_code == 304 and again.content == b"", path
        stale = await api.client.get(path, headers={"If-None-Match": '"something-else"'})
        assert stale.status_code == 200 and stale.content == first.content, path


@pytest.mark.parametrize(
    "path",
    [
        "/static/nope.js",
        "/static/index.html",
        "/static/__init__.py",
        "/static/../routes/pages.py",
        "/static/%2e%2e%2fapp.py",
        "/static/web/app.js",
        "/static/API.js",
        "/static/api",
        "/static/api.js.map",
        "/static/%2e/api.js",
        "/static/..%2fweb%2fapi.js",
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


async def script_of(api) -> str:
    """Every module of the page's script, as served."""
    return "\n".join([(await api.client.get(f"/static/{name}")).text for name in MODULES])


async def test_the_script_finds_every_element_it_needs_in_the_page(api):
    page = parse((await api.client.get("/")).text)
    script = await script_of(api)
    wanted = set(re.findall(r'\$\("([\w-]+)"\)', script))
    assert len(wanted) > 15
    assert wanted <= page.ids, wanted - page.ids


async def test_the_script_never_writes_html_and_calls_only_real_routes(api):
    script = await script_of(api)
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
    assert {"index.html", "app.js", "app.css", *MODULES} <= set(files)
    for name in files:
        assert any(fnmatch(name, pattern) for pattern in patterns), name
