"""The built site in headless Chromium, for the site tests (test_site.py: every page on a desktop,
on a phone and in print; test_site_download.py: the downloadable book).

Their fixtures ``site`` (the run's one build of the book, served on 127.0.0.1) and ``browser``
(Debian's ``chromium``, driven by Playwright; no browser download) are in conftest.py. A ``PageVisit``
blocks and counts every request that leaves 127.0.0.1, so a page that needs the network fails,
as it would for a reader on a plane. ``sweep`` opens every page once and keeps what each test
reads there: the tests read the pages' state, and each page is loaded once however many tests
look at it.

Without Chromium a site test module is skipped on a workstation, and fails under CI (``CI`` set):
each calls ``require_chromium()`` before it imports anything of Playwright's.
"""

import json
import os
import re
import shutil
import urllib.parse
from pathlib import Path

import pytest
import yaml

from tests import test_figures
from tools import guards

ROOT = Path(__file__).resolve().parent.parent
HTML = ROOT / "_build" / "html"
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
#: Headless, and offline: no host resolves but 127.0.0.1, where ``site`` serves the book.
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync",
                 "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1"]
DESKTOP = {"width": 1400, "height": 900}
PHONE = {"width": 390, "height": 844}
PRINT_A4 = {"width": 794, "height": 1123}  # A4 at 96 dpi


def require_chromium():
    """Skip the calling test module without Chromium or Playwright (fail under CI)."""
    message = "Debian's chromium is needed for the site test (apt-get install chromium)"
    if CHROMIUM is None:
        if os.environ.get("CI"):
            pytest.fail(message, pytrace=False)
        pytest.skip(message, allow_module_level=True)
    pytest.importorskip("playwright.sync_api")


def pages():
    """Every page of the table of contents, plus the pages Sphinx adds, relative to the site root."""
    toc = yaml.safe_load((ROOT / "_toc.yml").read_text(encoding="utf-8"))
    files = [toc["root"]] + [c["file"] for part in toc["parts"] for c in part["chapters"]]
    return [f"{f}.html" for f in files] + ["genindex.html", "search.html"]


WAIT_FOR_MATH = "() => window.MathJax && MathJax.startup ? MathJax.startup.promise : null"
WAIT_FOR_IMAGES = "() => Promise.all(Array.from(document.images).map(i => i.decode().catch(() => null)))"


class PageVisit:
    """Open one page and record what went wrong: failed loads, console errors, external requests."""

    def __init__(self, browser, base, path, color_scheme="light", viewport=None):
        self.context = browser.new_context(color_scheme=color_scheme, viewport=viewport or DESKTOP)
        self.external, self.failed, self.errors = [], [], []
        self.context.route("**/*", self._route)
        self.page = self.context.new_page()
        self.page.on("response", lambda r: r.status >= 400 and self.failed.append(f"{r.status} {r.url}"))
        self.page.on("requestfailed", lambda r: r.url.startswith(base) and self.failed.append(f"failed {r.url}"))
        self.page.on("console", lambda m: m.type == "error" and self.errors.append(m.text))
        self.page.on("pageerror", lambda e: self.errors.append(str(e)))
        self.base = base
        self.page.goto(base + path, wait_until="load")
        self.page.evaluate(WAIT_FOR_MATH)
        self.page.evaluate(WAIT_FOR_IMAGES)

    def _route(self, route):
        if _local(route.request.url, self.base):
            route.continue_()
        else:
            self.external.append(route.request.url)
            route.abort()

    def close(self):
        self.context.close()


def _local(url, base):
    return url.startswith((base, "data:", "blob:", "about:"))


def sweep(browser, site, viewport, read):
    """Open every page of ``pages()`` at ``viewport``, one after another in one tab, as a reader
    who follows the book's links would, and return ``{path: state}``: ``state`` is what
    ``read(page)`` returns (a dict), with what went wrong on that page from the moment it was
    opened until the next one was: ``external`` (requests that left the site; the browser cannot
    resolve any other host, ``CHROMIUM_ARGS``), ``failed`` (responses of 400 and over, and site
    resources that did not load) and ``errors`` (JavaScript console errors and exceptions).

    One tab, rather than a new browser context per page (``PageVisit``), keeps the browser's cache
    and compiled scripts from page to page, as a reader's browser does; that makes a page visit
    about three times cheaper. The first page is opened with an empty cache, and a request that
    fails is never cached, so every page still makes it again. Before each page the tab goes back
    to ``viewport`` and to the screen (``read`` may resize it or switch it to print)."""
    context = browser.new_context(viewport=viewport)
    page = context.new_page()
    log = {"external": [], "failed": [], "errors": []}
    page.on("request", lambda r: _local(r.url, site) or log["external"].append(r.url))
    page.on("response", lambda r: r.status >= 400 and log["failed"].append(f"{r.status} {r.url}"))
    page.on("requestfailed", lambda r: r.url.startswith(site) and log["failed"].append(f"failed {r.url}"))
    page.on("console", lambda m: m.type == "error" and log["errors"].append(m.text))
    page.on("pageerror", lambda e: log["errors"].append(str(e)))

    def take():  # what the log holds, emptied
        taken = {key: list(value) for key, value in log.items()}
        for value in log.values():
            value.clear()
        return taken

    found, previous = {}, None
    try:
        for path in pages():
            if previous is not None:
                found[previous].update(take())
            page.emulate_media(media="screen")
            page.set_viewport_size(viewport)
            page.goto(site + path, wait_until="load")
            page.evaluate(WAIT_FOR_MATH)
            page.evaluate(WAIT_FOR_IMAGES)
            found[path], previous = read(page), path
        page.goto("about:blank")  # the last page's late events arrive before it is left
        found[previous].update(take())
    finally:
        context.close()
    return found


FIGURE_STATES = """() => Object.fromEntries(Array.from(document.querySelectorAll('article figure[id]'))
  .filter(figure => figure.querySelector('img')).map(figure => {
  const img = figure.querySelector('img'), r = img.getBoundingClientRect();
  const article = document.querySelector('article'), a = article.getBoundingClientRect(), s = getComputedStyle(article);
  return [figure.id, {natural: img.naturalWidth, naturalHeight: img.naturalHeight, width: r.width, height: r.height,
          cssWidth: parseFloat(img.style.width) || img.naturalWidth,
          left: r.left, right: r.right, viewport: window.innerWidth,
          columnLeft: a.left + parseFloat(s.paddingLeft), columnRight: a.right - parseFloat(s.paddingRight),
          scrolls: figure.scrollWidth > figure.clientWidth + 1}];
}))"""


def check_links(base, hrefs):
    """Every link into the site names an existing file, and an existing id when it has a fragment."""
    for href in hrefs:
        if not href.startswith(base):
            continue
        url = urllib.parse.urlsplit(href)
        relative = urllib.parse.unquote(url.path)[len(urllib.parse.urlsplit(base).path):]
        target = HTML / (relative or "index.html")
        if target.is_dir():
            target = target / "index.html"
        assert target.exists(), f"broken link {href}"
        if url.fragment and target.suffix == ".html":
            html = target.read_text(encoding="utf-8")
            fragment = urllib.parse.unquote(url.fragment)
            assert re.search(rf'id="{re.escape(fragment)}"', html), f"missing anchor {href}"


NAVIGATION_STATE = (  # one JS function; the long lines are split only in this Python source
    """() => {
  const shown = (e) => { if (!e) return false; const r = e.getBoundingClientRect(); const s = getComputedStyle(e);
    return r.width > 0 && r.height > 0 && r.right > 0 && s.visibility !== 'hidden' && s.display !== 'none'; };
  const primary = document.querySelector('#pst-primary-sidebar-modal[open]') """
    """|| document.querySelector('#pst-primary-sidebar');
  const secondary = document.querySelector('#pst-secondary-sidebar-modal[open]') """
    """|| document.querySelector('#pst-secondary-sidebar');
  return {
    primaryLinks: Array.from(primary.querySelectorAll('nav.bd-docs-nav a')).filter(shown).length,
    secondaryLinks: Array.from(secondary.querySelectorAll('nav a')).filter(shown).length,
    searchBoxes: Array.from(document.querySelectorAll('button.search-button-field')).filter(shown).length,
    header: document.querySelector('#pst-header').getBoundingClientRect().height,
  };
}"""
)


def visible(page, selector):
    """The one visible element of ``selector`` on the page (the theme renders some buttons twice)."""
    shown = [e for e in page.locator(selector).all() if e.is_visible()]
    assert len(shown) == 1, f"{len(shown)} visible {selector!r}"
    return shown[0]


def figures_of_the_book():
    """``(page, figure name, notebook name)`` of every figure the chapters show, in order."""
    return [(f"chapters/{path.stem}.html", name, path.name) for path in guards.chapter_notebooks()
            for name in guards.figures(json.loads(path.read_text(encoding="utf-8")))]


def figure_params(known=None):
    """One ``(page, name)`` parameter per figure; a chapter whose stored figures are stale
    (test_figures.STALE), or a figure in ``known``, may fail (non-strict xfail, with the reason)."""
    params = []
    for page, name, notebook in figures_of_the_book():
        reasons = [test_figures.STALE.get(notebook), (known or {}).get(name)]
        reason = "; ".join(r for r in reasons if r)
        params.append(pytest.param(page, name, id=name, marks=[pytest.mark.xfail(reason=reason, strict=False)]
                                   if reason else []))
    return params
