"""The built site in headless Chromium, for the site tests (test_site.py: every page on a desktop,
on a phone and in print; test_site_download.py: the downloadable book).

Their fixtures ``site`` (the run's one build of the book, served on 127.0.0.1) and ``browser``
(Debian's ``chromium``, driven by Playwright; no browser download) are in conftest.py. The browser
cannot resolve any host but 127.0.0.1 (``CHROMIUM_ARGS``), so a page that needs the network fails,
as it would for a reader on a plane. A ``Tab`` opens the site's pages one after another in one
tab, as a reader's browser does, and logs every request that leaves the site; ``sweep`` opens
every page once in it and keeps what each test reads there, so each page is loaded once however
many tests look at it.

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


def _local(url, base):
    return url.startswith((base, "data:", "blob:", "about:"))


class Tab:
    """One tab that opens the site's pages one after another, as a reader's browser does.

    The browser's cache and compiled scripts carry over from page to page, which makes a page
    visit two to three times cheaper than in a new browser context: about 1.6 against 3.6 CPU
    seconds per page, measured once on the 2-core test machine. Nothing else carries over:
    ``open`` empties the site's local and session storage (where the theme keeps a reader's
    choices, such as dark mode) before it leaves a page, and puts the tab back to the screen (not
    print), to ``color_scheme`` and to ``viewport`` before it loads the next, so that page lays
    itself out at that size from the start, as on a phone that opens it. A request that fails is
    never cached, so every page still makes it again.

    ``log`` gathers what went wrong from the first page on: ``external`` (requests that left the
    site; the browser cannot resolve any other host, ``CHROMIUM_ARGS``), ``failed`` (responses
    of 400 and over, and site resources that did not load) and ``errors`` (JavaScript console
    errors and exceptions); ``take()`` returns it and empties it."""

    def __init__(self, browser, site):
        self.site = site
        self.context = browser.new_context(viewport=DESKTOP)
        self.page = self.context.new_page()
        self.log = {"external": [], "failed": [], "errors": []}
        self.page.on("request", lambda r: _local(r.url, site) or self.log["external"].append(r.url))
        self.page.on("response", lambda r: r.status >= 400 and self.log["failed"].append(f"{r.status} {r.url}"))
        self.page.on("requestfailed", lambda r: r.url.startswith(site) and self.log["failed"].append(f"failed {r.url}"))
        self.page.on("console", lambda m: m.type == "error" and self.log["errors"].append(m.text))
        self.page.on("pageerror", lambda e: self.log["errors"].append(str(e)))

    def open(self, path, viewport=DESKTOP, color_scheme="light", settle=True):
        """Load ``path`` (relative to the site) at ``viewport``; with ``settle``, wait until its
        math is typeset and its images are decoded. Returns the Playwright page."""
        self.leave(None)
        self.page.emulate_media(media="screen", color_scheme=color_scheme)
        self.page.set_viewport_size(viewport)
        self.page.goto(self.site + path, wait_until="load")
        if settle:
            self.page.evaluate(WAIT_FOR_MATH)
            self.page.evaluate(WAIT_FOR_IMAGES)
        return self.page

    def leave(self, url="about:blank"):
        """Empty the site's storage; then, unless ``url`` is None, go to ``url`` (a page's late
        events arrive before it is left)."""
        if self.page.url.startswith(self.site):
            self.page.evaluate("() => { localStorage.clear(); sessionStorage.clear(); }")
        if url is not None:
            self.page.goto(url)

    def take(self):
        """What the log holds, emptied."""
        taken = {key: list(value) for key, value in self.log.items()}
        for value in self.log.values():
            value.clear()
        return taken

    def close(self):
        self.context.close()


def sweep(tab, viewport, read):
    """Open every page of ``pages()`` at ``viewport`` in ``tab`` (a ``Tab``), one after another,
    and return ``{path: state}``: ``state`` is what ``read(page)`` returns (a dict), with what the
    tab logged from the moment the page was opened until the next one was (``Tab.log``)."""
    tab.leave()
    tab.take()  # what earlier visits logged is theirs
    found, previous = {}, None
    for path in pages():
        if previous is not None:
            found[previous].update(tab.take())
        found[path], previous = read(tab.open(path, viewport)), path
    tab.leave()
    found[previous].update(tab.take())
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
