"""The built book reads offline: no page loads a script or a stylesheet from another host.

These tests read the HTML of a finished build. `make test` runs them right after the strict book
build (`make book-check`), with LOOPY_EDU_BUILT_BOOK pointing at `_build/html`; a missing build
then fails. Without that variable (a plain `pytest`, which runs before any build) they are
skipped.
"""
import json
import os
import re
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import unquote, urlsplit

import pytest

BUILT = os.environ.get("LOOPY_EDU_BUILT_BOOK")
pytestmark = pytest.mark.skipif(not BUILT,
                                reason="needs LOOPY_EDU_BUILT_BOOK (make book-check)")

EXTERNAL = re.compile(r"^\s*(?:[a-z][a-z0-9+.-]*:)?//", re.I)
# Widget modules that the html-manager bundle (embed-amd.js) defines itself; any other module it
# would fetch from a CDN at run time (its requireLoader's fallback).
BUILT_IN_WIDGET_MODULES = {"@jupyter-widgets/base", "@jupyter-widgets/controls",
                           "@jupyter-widgets/output"}
WIDGET_STATE = "application/vnd.jupyter.widget-state+json"


class Page(HTMLParser):
    """What one HTML page loads: script sources, <link> targets, widget state, images, maths."""

    def __init__(self, path):
        super().__init__(convert_charrefs=True)
        self.path = path
        self.scripts, self.links, self.widget_states, self.images = [], [], [], []
        self.has_math = False
        self._state_script = False
        self.feed(path.read_text(encoding="utf-8"))

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if "math" in (attrs.get("class") or "").split():
            self.has_math = True
        if tag == "script":
            if attrs.get("src"):
                self.scripts.append(attrs["src"])
            self._state_script = attrs.get("type") == WIDGET_STATE
            for name, value in attrs.items():
                if name.startswith("data-") and value and EXTERNAL.match(value):
                    self.scripts.append(value)      # e.g. the widget manager's CDN attribute
        elif tag == "link" and attrs.get("href"):
            self.links.append(attrs["href"])
        elif tag == "img" and attrs.get("src"):
            self.images.append(attrs)

    def handle_data(self, data):
        if self._state_script:
            self.widget_states.append(json.loads(data))

    def handle_endtag(self, tag):
        if tag == "script":
            self._state_script = False

    def local_file(self, url):
        """The file a page-relative URL names (query and fragment dropped)."""
        return (self.path.parent / unquote(urlsplit(url).path)).resolve()


@pytest.fixture(scope="module")
def html_dir():
    root = Path(BUILT)
    assert root.is_dir(), f"LOOPY_EDU_BUILT_BOOK={BUILT!r} is not a folder: build the book"
    return root


@pytest.fixture(scope="module")
def pages(html_dir):
    # _static and _sources hold the theme's templates and the page sources, not pages.
    found = [Page(p) for p in sorted(html_dir.rglob("*.html"))
             if p.relative_to(html_dir).parts[0] not in ("_static", "_sources")]
    assert len(found) >= 10, f"{html_dir} holds {len(found)} HTML pages; expected a built book"
    return found


def _external(urls):
    return [u for u in urls if EXTERNAL.match(u)]


def test_no_page_loads_from_another_host(pages, html_dir):
    offenders = {str(p.path.relative_to(html_dir)): _external(p.scripts + p.links)
                 for p in pages}
    offenders = {page: urls for page, urls in offenders.items() if urls}
    assert not offenders, f"pages that load scripts or links from another host: {offenders}"


def test_mathjax_is_served_by_the_book(pages, html_dir):
    with_math = [p for p in pages if p.has_math]
    assert len(with_math) >= 5, f"only {len(with_math)} pages hold maths; is the build whole?"
    for page in with_math:
        mathjax = [s for s in page.scripts if "mathjax" in s.lower()]
        where = page.path.relative_to(html_dir)
        assert mathjax, f"{where} holds maths but loads no MathJax"
        for src in mathjax:
            assert not EXTERNAL.match(src), f"{where} loads MathJax from {src}"
            assert page.local_file(src).is_file(), f"{where} loads MathJax from missing {src}"


def test_every_local_script_and_link_exists(pages, html_dir):
    missing = {}
    for page in pages:
        for url in page.scripts + page.links:
            local = not EXTERNAL.match(url) and urlsplit(url).path
            if local and not page.local_file(url).exists():
                missing.setdefault(str(page.path.relative_to(html_dir)), []).append(url)
    assert not missing, f"pages that name files the build does not hold: {missing}"


def test_stylesheets_import_nothing_from_another_host(pages):
    sheets = {p.local_file(u) for p in pages for u in p.links
              if u.split("?")[0].endswith(".css") and not EXTERNAL.match(u)}
    assert sheets, "no page links a local stylesheet"
    remote = re.compile(r"(?:@import\s+|url\(\s*)['\"]?(?:https?:)?//", re.I)
    offenders = [str(s) for s in sheets if s.is_file() and remote.search(s.read_text("utf-8"))]
    assert not offenders, f"stylesheets that load from another host: {offenders}"


def test_widget_pages_render_with_the_local_manager(pages, html_dir):
    with_state = [p for p in pages if p.widget_states]
    if not with_state:
        pytest.skip("no page holds widget state: the book was built without executing it")
    for page in with_state:
        where = page.path.relative_to(html_dir)
        for name in ("require.js", "embed-amd.js"):
            assert any(s.split("?")[0].endswith(name) for s in page.scripts), (where, name)
        modules = {model.get("model_module") for state in page.widget_states
                   for model in state["state"].values()}
        modules |= {model.get("state", {}).get("_view_module") for state in page.widget_states
                    for model in state["state"].values()} - {None}
        assert modules <= BUILT_IN_WIDGET_MODULES, (
            f"{where} needs widget modules {sorted(modules - BUILT_IN_WIDGET_MODULES)}, which "
            "the html-manager would fetch from a CDN; serve them from _static too")


def test_figures_are_drawn_at_twice_their_display_size(pages, html_dir):
    """The kernels' "retina" format (book/_ipython): a PNG of W x H CSS pixels holds 2W x 2H."""
    figures = [(p, img) for p in pages for img in p.images
               if "_images/" in img["src"] and img["src"].endswith(".png")]
    if not figures:
        pytest.skip("no page holds a figure: the book was built without executing it")
    for page, img in figures:
        where = (str(page.path.relative_to(html_dir)), img["src"])
        css_width = re.search(r"width:\s*(\d+)px", img.get("style", ""))
        assert css_width, f"{where}: no display width, so the PNG shows at its full pixel size"
        with page.local_file(img["src"]).open("rb") as f:
            header = f.read(24)
        pixel_width = int.from_bytes(header[16:20], "big")      # the PNG's IHDR width
        assert pixel_width >= 2 * int(css_width[1]) - 1, (where, pixel_width, css_width[1])
