"""The built site in a real browser: every page complete, offline, typeset and linked.

Builds the book with warnings as errors, serves ``_build/html`` on 127.0.0.1 and opens every
page in headless Chromium (Debian's ``chromium``, driven by Playwright; no browser download).
Every request that leaves 127.0.0.1 is blocked and counted, so a page that needs the network
fails here, as it would for a reader on a plane. Screenshots land in ``_build/screenshots``.

Without Chromium the test is skipped on a workstation, and fails under CI (``CI`` set).
"""

import functools
import http.server
import importlib
import importlib.metadata
import os
import re
import shutil
import subprocess
import sys
import threading
import urllib.parse
from pathlib import Path

import pytest
import yaml
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parent.parent
BUILD = ROOT / "_build"
HTML = BUILD / "html"
SHOTS = BUILD / "screenshots"
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]

if CHROMIUM is None:
    message = "Debian's chromium is needed for the site test (apt-get install chromium)"
    if os.environ.get("CI"):
        pytest.fail(message, pytrace=False)
    pytest.skip(message, allow_module_level=True)

sync_playwright = pytest.importorskip("playwright.sync_api").sync_playwright


@pytest.fixture(scope="module")
def site(built_book):
    """The book built with README command 1's build (``built_book`` in tests/conftest.py, the run's
    one build, which test_buttons.py reads too), served on 127.0.0.1: yields the base URL. This is
    CI's one build of the book (.ci/run keeps _build/html)."""
    assert built_book == HTML
    handler = functools.partial(_QuietHandler, directory=str(HTML))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/"
    server.shutdown()


@pytest.fixture(scope="module")
def browser():
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


def pages():
    """Every page of the table of contents, plus the pages Sphinx adds, relative to the site root."""
    toc = yaml.safe_load((ROOT / "_toc.yml").read_text(encoding="utf-8"))
    files = [toc["root"]] + [c["file"] for part in toc["parts"] for c in part["chapters"]]
    return [f"{f}.html" for f in files] + ["genindex.html", "search.html"]


class PageVisit:
    """Open one page and record what went wrong: failed loads, console errors, external requests."""

    def __init__(self, browser, base, path, color_scheme="light", viewport=None):
        self.context = browser.new_context(color_scheme=color_scheme,
                                           viewport=viewport or {"width": 1280, "height": 900})
        self.external, self.failed, self.errors = [], [], []
        self.context.route("**/*", self._route)
        self.page = self.context.new_page()
        self.page.on("response", lambda r: r.status >= 400 and self.failed.append(f"{r.status} {r.url}"))
        self.page.on("requestfailed", lambda r: r.url.startswith(base) and self.failed.append(f"failed {r.url}"))
        self.page.on("console", lambda m: m.type == "error" and self.errors.append(m.text))
        self.page.on("pageerror", lambda e: self.errors.append(str(e)))
        self.base = base
        self.page.goto(base + path, wait_until="load")
        self.page.evaluate("() => window.MathJax && MathJax.startup ? MathJax.startup.promise : null")
        self.page.evaluate("() => Promise.all(Array.from(document.images).map(i => i.decode().catch(() => null)))")

    def _route(self, route):
        if route.request.url.startswith(("http://127.0.0.1", "data:", "blob:", "about:")):
            route.continue_()
        else:
            self.external.append(route.request.url)
            route.abort()

    def close(self):
        self.context.close()


MATH_STATE = """() => {
  const math = Array.from(document.querySelectorAll('.math'));
  const article = document.querySelector('article') || document.body;
  const copy = article.cloneNode(true);
  copy.querySelectorAll('pre, code, .highlight, mjx-container, script').forEach(e => e.remove());
  const text = copy.textContent;
  return {math: math.length, typeset: math.filter(m => m.querySelector('mjx-container')).length,
          raw: ['$$', '\\\\(', '\\\\[', '\\\\begin{'].filter(s => text.includes(s))};
}"""

LINKS = """() => Array.from(document.querySelectorAll('a[href]')).map(a => a.href)"""

IMAGES_WITHOUT_ALT = """() => Array.from(document.querySelectorAll('article img')).filter(i => !i.alt)
  .map(i => i.src)"""

BROKEN_IMAGES = """() => Array.from(document.images).filter(i => !(i.complete && i.naturalWidth > 0)).map(i => i.src)"""


@pytest.mark.parametrize("path", pages())
def test_page_is_complete_offline(site, browser, path):
    visit = PageVisit(browser, site, path)
    try:
        assert visit.external == [], "requests that left the site"
        assert visit.failed == [], "resources that did not load"
        assert visit.errors == [], "JavaScript console errors"
        assert visit.page.evaluate(BROKEN_IMAGES) == [], "images that did not load"
        assert visit.page.evaluate(IMAGES_WITHOUT_ALT) == [], "figures without alt text"
        math = visit.page.evaluate(MATH_STATE)
        assert math["typeset"] == math["math"], f"{math['math'] - math['typeset']} formulas not typeset"
        assert math["raw"] == [], "raw TeX delimiters left in the text"
        _check_links(site, visit.page.evaluate(LINKS))
    finally:
        visit.close()


def test_every_built_page_is_tested(site):
    built = {p.relative_to(HTML).as_posix() for p in HTML.rglob("*.html")
             if not p.relative_to(HTML).parts[0].startswith("_")}
    assert built == set(pages()) | {"index.html"}  # index.html only redirects to the landing page


def test_index_redirects_to_the_landing_page(site, browser):
    page = browser.new_page()
    try:
        page.goto(site + "index.html")
        page.wait_for_url("**/intro.html", timeout=10_000)
        assert "Cross-Entropy, Executed" in page.title()
    finally:
        page.close()


def test_chapters_have_math_and_figures(site, browser):
    """The typesetting check above must not pass vacuously."""
    visit = PageVisit(browser, site, "chapters/11_entropy.html")
    try:
        math = visit.page.evaluate(MATH_STATE)
        assert math["math"] >= 10 and math["typeset"] == math["math"]
        assert visit.page.evaluate("() => document.images.length") >= 1
        assert visit.page.evaluate("() => document.querySelectorAll('script[src*=\"_static/mathjax\"]').length") == 1
    finally:
        visit.close()


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


def _visible(page, selector):
    """The one visible element of ``selector`` on the page (the theme renders some buttons twice)."""
    shown = [e for e in page.locator(selector).all() if e.is_visible()]
    assert len(shown) == 1, f"{len(shown)} visible {selector!r}"
    return shown[0]


def test_navigation_opens_on_a_phone(site, browser):
    """At 390 px both sidebars are hidden; the menu and "Contents" buttons open them."""
    visit = PageVisit(browser, site, "chapters/31_weight.html", viewport={"width": 390, "height": 844})
    page = visit.page
    try:
        state = page.evaluate(NAVIGATION_STATE)
        assert state["primaryLinks"] == 0 and state["secondaryLinks"] == 0, state
        _visible(page, ".primary-toggle").click()
        page.wait_for_selector("#pst-primary-sidebar-modal[open]", timeout=5_000)
        state = page.evaluate(NAVIGATION_STATE)
        assert state["primaryLinks"] >= 10, state  # the book's table of contents, clickable
        page.keyboard.press("Escape")
        page.wait_for_selector("#pst-primary-sidebar-modal:not([open])", state="attached", timeout=5_000)
        _visible(page, ".secondary-toggle").click()
        page.wait_for_selector("#pst-secondary-sidebar-modal[open]", timeout=5_000)
        state = page.evaluate(NAVIGATION_STATE)
        assert state["secondaryLinks"] >= 3, state  # the page's sections
    finally:
        visit.close()


def test_navigation_on_a_desktop(site, browser):
    """At 1400 px both sidebars are shown, the menu button hides and shows the primary one,
    and there is one search box and no empty top bar."""
    visit = PageVisit(browser, site, "chapters/31_weight.html", viewport={"width": 1400, "height": 900})
    page = visit.page
    try:
        state = page.evaluate(NAVIGATION_STATE)
        assert state["primaryLinks"] >= 10 and state["secondaryLinks"] >= 3, state
        assert state["searchBoxes"] == 1 and state["header"] == 0, state
        toggle = _visible(page, ".primary-toggle")
        toggle.click()
        page.wait_for_function("() => document.querySelector('#pst-primary-sidebar')"
                               ".getBoundingClientRect().right <= 0")
        assert page.evaluate(NAVIGATION_STATE)["primaryLinks"] == 0
        toggle.click()
        page.wait_for_function("() => document.querySelector('#pst-primary-sidebar').getBoundingClientRect().left >= 0")
        assert page.evaluate(NAVIGATION_STATE)["primaryLinks"] >= 10
    finally:
        visit.close()


BIBLIOGRAPHY = """() => Array.from(document.querySelectorAll('div.citation')).map(c => ({
  id: c.id,
  label: c.querySelector('.label').textContent.replace(/^\\[|\\]$/g, ''),
  text: c.textContent,
  links: Array.from(c.querySelectorAll('a[href^="http"]')).map(a => a.href),
}))"""

CITATIONS = """() => Array.from(document.querySelectorAll('a[href*="references.html#"]'))
  .map(a => ({target: a.getAttribute('href').split('#')[1], text: a.textContent}))"""

#: The five posts the book was born from, as they show themselves (title; author where shown).
SEED_POSTS = ["CrossEntropyLossの挙動を確認する", "What NLLLoss computes", "olxtar. [PyTorch] nn.CrossEntropyLoss()",
              "강의찬 (Kang Uichan). cross entropy", "Pytorch中的CrossEntropy"]


@pytest.fixture(scope="module")
def chapter_pages(site, browser):
    """What the bibliography and figure tests read on every chapter page, in one visit per chapter
    (at the default viewport): its citations, its numbered figures and its {numref} links."""
    found = {}
    for path in [p for p in pages() if p.startswith("chapters/")]:
        visit = PageVisit(browser, site, path)
        try:
            found[path] = {"citations": visit.page.evaluate(CITATIONS), "figures": visit.page.evaluate(FIGURE_NUMBERS),
                           "numrefs": visit.page.evaluate(NUMREFS)}
        finally:
            visit.close()
    return found


def test_bibliography(site, browser, chapter_pages):
    """Titles as written, URLs as links, one label per work, and the text cites by the list's labels."""
    visit = PageVisit(browser, site, "references.html")
    try:
        entries = visit.page.evaluate(BIBLIOGRAPHY)
    finally:
        visit.close()
    labels = [e["label"] for e in entries]
    assert len(entries) >= 10 and len(set(labels)) == len(labels), labels
    text = "\n".join(e["text"] for e in entries)
    assert "torch.nn.CrossEntropyLoss, PyTorch 2.13" in text and "Elements of Information Theory" in text
    for entry in entries:
        urls = re.findall(r"URL: (\S+?)\.?$", entry["text"].strip())
        assert urls == [] or urls[0] in entry["links"], f"{entry['label']}: URL not a link"
    assert all(post in text for post in SEED_POSTS), [p for p in SEED_POSTS if p not in text]
    by_id = {e["id"]: e["label"] for e in entries}
    cited = set()
    for path, chapter in chapter_pages.items():
        for citation in chapter["citations"]:
            assert by_id.get(citation["target"]) == citation["text"], (path, citation)
            cited.add(citation["target"])
    assert len(cited) >= 5


def search(browser, site, query):
    """The result links of the site's own search for ``query``."""
    visit = PageVisit(browser, site, "search.html?q=" + urllib.parse.quote(query))
    try:
        visit.page.wait_for_selector("#search-results ul.search li a", timeout=20_000)
        return visit.page.evaluate(
            "() => Array.from(document.querySelectorAll('#search-results ul.search li a')).map(a => a.href)")
    finally:
        visit.close()


def test_search_finds_the_ignore_index_chapter(site, browser):
    results = search(browser, site, "ignore_index")
    assert any("chapters/32_ignore_index.html" in href for href in results), results


def test_search_for_an_error_message_finds_its_explanation(site, browser):
    results = search(browser, site, "ignore_index is not supported for floating point target")
    assert any(page in href for href in results for page in ("errors.html", "chapters/32_ignore_index.html")), results


def snippets(browser, site, query):
    """The text of each result snippet of the site's search for ``query``."""
    visit = PageVisit(browser, site, "search.html?q=" + urllib.parse.quote(query))
    try:
        visit.page.wait_for_selector("#search-results ul.search li p.context", timeout=20_000)
        visit.page.wait_for_function(  # every result has been listed, with its snippet
            "() => (document.querySelector('#search-results .search-summary') || {}).textContent?.includes('finished')")
        return visit.page.evaluate(
            "() => Array.from(document.querySelectorAll('#search-results ul.search li p.context'))"
            ".map(p => p.textContent)")
    finally:
        visit.close()


def test_search_snippets_are_article_text(site, browser):
    """No toolbar or table-of-contents text, no raw TeX in the snippets under the search results."""
    found = snippets(browser, site, "entropy") + snippets(browser, site, "weight")
    assert len(found) >= 10
    for snippet in found:
        for noise in (".ipynb", ".pdf", " Contents ", "\\[", "\\(", "\\sum", "\\log", "\\frac"):
            assert noise not in snippet, (noise, snippet)


def test_every_page_has_a_title_a_description_and_an_icon(site, browser):
    for path in pages():
        html = (HTML / path).read_text(encoding="utf-8")
        title = re.search(r"<title>(.*?)</title>", html, re.S).group(1)
        parts = [p.strip() for p in re.split(r"&#8212;| — | - ", title)]
        assert len(parts) == len(set(parts)), f"{path}: the title repeats itself: {title}"
        if path not in ("search.html", "genindex.html"):
            description = re.search(r'<meta name="description" content="([^"]{40,})"', html)
            assert description, f"{path}: no meta description"
        icon = re.search(r'<link rel="icon" href="([^"]+)"', html)
        assert icon and (HTML / Path(path).parent / icon.group(1)).resolve().is_file(), f"{path}: no favicon"


def test_the_downloaded_book_runs(site, browser, tmp_path):
    """The archive linked from every page, unpacked in an empty folder, installs with the commands
    of the page "Run the book yourself" and runs a chapter to its stored outputs.

    The fresh virtual environment (the page's ``python3 -m venv .venv``) sees, from this test's
    environment, only the distributions that the archive's ``requirements.txt`` requires, with
    everything they require in turn (``_requirement_closure``): nothing else, not the repository's
    ``lib``. The page's install command then finds those requirements satisfied (pip checks each
    version against the archive's ``requirements.txt``, and would install from the index any it
    found missing) and installs the archive's own ``lib`` (``-e .``) from the unpacked folder;
    nbval runs a chapter there with nothing on ``PYTHONPATH``. A requirement missing from the
    archive's ``requirements.txt`` (nbval, ipykernel, ...), or a file missing from the archive,
    fails the run. What it does not repeat is downloading and unpacking the wheels: CI's install
    (``.ci/run``) does that, from the lock compiled from the same ``requirements.txt``."""
    visit = PageVisit(browser, site, "chapters/11_entropy.html")
    try:
        link = visit.page.locator("footer a[download]")
        assert link.count() == 1
        with visit.page.expect_download() as download:
            link.click()
        archive = tmp_path / "book.zip"
        download.value.save_as(archive)
    finally:
        visit.close()
    commands = re.search(r"```bash\n(.*?)```", (ROOT / "run.md").read_text(encoding="utf-8"), re.S).group(1)
    venv, install, _ = commands.strip().splitlines()
    assert venv == "python3 -m venv .venv" and install == ".venv/bin/python -m pip install -r requirements.txt"
    shutil.unpack_archive(archive, tmp_path / "unpacked")
    book = tmp_path / "unpacked" / "cross-entropy-executed"
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV", "CEE_DEVICE")}

    def run(command):
        result = subprocess.run(command, shell=True, cwd=book, env=env, capture_output=True, text=True)
        assert result.returncode == 0, f"{command}\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
        return result.stdout

    run(venv)
    version, site_packages = run(".venv/bin/python -c 'import sys, sysconfig; print(sys.version_info[:2]); "
                                 "print(sysconfig.get_path(\"purelib\"))'").splitlines()
    assert version == str(sys.version_info[:2]), "the page's python3 is not this test's Python"
    visible = _expose(_requirement_closure(book / "requirements.txt"), tmp_path / "requirements")
    Path(site_packages, "requirements.pth").write_text(f"{visible}\n", encoding="utf-8")
    run(install + " --quiet")
    lib = run(".venv/bin/python -c 'import lib; print(lib.__file__)'").strip()
    assert Path(lib).resolve().is_relative_to(book.resolve()), f"lib imported from {lib}, not from the archive"
    out = run(".venv/bin/python -m pytest -q -p no:cacheprovider chapters/11_entropy.ipynb")
    assert re.search(r"\b\d+ passed\b", out) and "failed" not in out, out


def _requirement_closure(requirements):
    """The installed distributions that ``requirements`` (a requirements file) names, and those
    they require, recursively (markers evaluated, extras followed), as ``importlib.metadata``
    distributions of this test's environment. The editable ``-e .`` line is left out."""
    found, todo = {}, []
    for line in requirements.read_text(encoding="utf-8").splitlines():
        line = line.split("#", 1)[0].strip()
        if line and not line.startswith("-"):
            todo.append(Requirement(line))
    while todo:
        requirement = todo.pop()
        key = canonicalize_name(requirement.name)
        extras = set(requirement.extras)
        if key in found and extras <= found[key][1]:
            continue
        distribution = importlib.metadata.distribution(requirement.name)  # missing: the test fails here
        extras |= found.get(key, (None, set()))[1]
        found[key] = (distribution, extras)
        for needed in map(Requirement, distribution.requires or []):
            if needed.marker is None or any(needed.marker.evaluate({"extra": e}) for e in extras | {""}):
                todo.append(needed)
    return [distribution for distribution, _ in found.values()]


def _expose(distributions, folder):
    """A folder of links to the files of ``distributions`` (their top-level packages, modules and
    metadata), to put on a fresh environment's path; returns the folder."""
    folder.mkdir()
    for distribution in distributions:
        for file in distribution.files or []:
            top = file.parts[0]
            if top == ".." or (folder / top).exists():
                continue  # scripts outside site-packages; a folder shared by a namespace package
            (folder / top).symlink_to(distribution.locate_file(top))
    return folder


WIDE_OUTPUTS = """() => Array.from(document.querySelectorAll('article div.cell_output pre'))
  .filter(e => e.getBoundingClientRect().width > 0 && e.scrollWidth > e.clientWidth + 1)
  .map(e => e.textContent.slice(0, 80))"""

EMPTY_CODE_BOXES = """() => Array.from(document.querySelectorAll('article div.highlight, article div.cell_output'))
  .filter(e => e.getBoundingClientRect().height > 0 && e.textContent.trim() === '' && !e.querySelector('img'))
  .map(e => e.outerHTML.slice(0, 120))"""

EQUATIONS = """() => Array.from(document.querySelectorAll('article div.math')).map(m => {
  const formula = m.querySelector('mjx-container'), number = m.querySelector('.eqno');
  const f = formula.getBoundingClientRect(), n = number ? number.getBoundingClientRect() : null;
  const overlap = n !== null && f.left < n.right && n.left < f.right && f.top < n.bottom && n.top < f.bottom;
  const style = getComputedStyle(formula);
  const scrolls = formula.scrollWidth > formula.clientWidth + 1;
  const hidden = scrolls && (style.overflowX !== 'auto' || !style.backgroundImage.includes('gradient'));
  const narrow = f.width < m.getBoundingClientRect().width - 2;
  return {id: m.id, overlap, hidden, narrow};
}).filter(e => e.overlap || e.hidden || e.narrow)"""


def test_outputs_read_whole_on_a_desktop_and_in_print(site, browser):
    """No output scrolls sideways at 1400 px or on a printed A4 page, and print shows no empty code box."""
    for path in pages():
        visit = PageVisit(browser, site, path, viewport={"width": 1400, "height": 900})
        try:
            assert visit.page.evaluate(WIDE_OUTPUTS) == [], f"{path}: outputs wider than their box"
            visit.page.emulate_media(media="print")
            visit.page.set_viewport_size({"width": 794, "height": 1123})  # A4 at 96 dpi
            assert visit.page.evaluate(WIDE_OUTPUTS) == [], f"{path}: printed outputs cut at the right"
            assert visit.page.evaluate(EMPTY_CODE_BOXES) == [], f"{path}: empty code boxes in print"
        finally:
            visit.close()


PAGE_WIDER_THAN_SCREEN = """() => {
  const width = document.documentElement.clientWidth;
  if (document.documentElement.scrollWidth <= width) return [];
  return Array.from(document.querySelectorAll('article *'))
    .filter(e => e.getBoundingClientRect().right > width + 1 && e.children.length === 0)
    .filter(e => {  // what widens the page, not what scrolls inside its own box
      for (let p = e.parentElement; p; p = p.parentElement) {
        if (['auto', 'scroll', 'hidden', 'clip'].includes(getComputedStyle(p).overflowX)) return false;
      }
      return true;
    })
    .map(e => e.tagName + ': ' + e.textContent.slice(0, 60))
    .concat(['page ' + document.documentElement.scrollWidth + ' px wide']);
}"""


@pytest.fixture(scope="module")
def on_a_phone(site, browser):
    """What the phone tests below read on every page at 390 px, in one visit per page."""
    found = {}
    for path in pages():
        visit = PageVisit(browser, site, path, viewport={"width": 390, "height": 844})
        try:
            found[path] = {"wider": visit.page.evaluate(PAGE_WIDER_THAN_SCREEN),
                           "equations": visit.page.evaluate(EQUATIONS),
                           "numbered": visit.page.evaluate("() => document.querySelectorAll('article div.math .eqno')"
                                                           ".length")}
        finally:
            visit.close()
    return found


def test_no_page_scrolls_sideways_on_a_phone(on_a_phone):
    """At 390 px no page is wider than the screen: a long identifier in the text or a long word in
    a heading breaks across lines (code blocks and wide tables scroll inside their own box)."""
    for path, state in on_a_phone.items():
        assert state["wider"] == [], f"{path}: wider than a 390 px screen"


def test_equations_fit_on_a_phone(on_a_phone):
    """At 390 px a display equation has the page's whole width, its number is never over it, and
    a formula wider than that scrolls inside its box with a visible cue (the scroll shadows)."""
    for path, state in on_a_phone.items():
        assert state["equations"] == [], path
    assert sum(state["numbered"] for state in on_a_phone.values()) >= 20  # numbered equations were there to check


def test_screenshots(site, browser):
    """Landing page and one chapter in light and dark mode, for a person to look at."""
    SHOTS.mkdir(parents=True, exist_ok=True)
    shots = [("intro.html", "light", "landing"), ("chapters/11_entropy.html", "light", "chapter-light"),
             ("chapters/11_entropy.html", "dark", "chapter-dark")]
    for path, scheme, name in shots:
        visit = PageVisit(browser, site, path, color_scheme=scheme)
        try:
            visit.page.evaluate(f"() => {{ document.documentElement.dataset.theme = '{scheme}'; }}")
            visit.page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=False)
            assert (SHOTS / f"{name}.png").stat().st_size > 10_000
        finally:
            visit.close()


def _check_links(base, hrefs):
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


# --------------------------------------------------------------------------------------------
# Figures: sharp on a high-density screen, whole and legible on a phone, referred to by number
# --------------------------------------------------------------------------------------------
# lib.display stores each figure as a PNG of twice its width at plots.DPI, with that width in
# the output metadata, which MyST-NB writes as style="width: Npx" (the figure's "CSS width").
# tests/test_figures.py redraws each figure with the chapter's own call: from it we know the
# smallest text the figure draws, in points, so its size on the page in CSS px is
#     points / 72 * dpi * (rendered width / CSS width).
#
# Legible: at least SMALLEST_TEXT_PX CSS px. A CSS pixel is defined by a visual angle (the
# reference pixel, about 0.0213 degrees, 1/96 in at arm's length; phones and desktops are both
# sized to it), so 7 px text has capitals of about 0.7 * 7 = 4.9 px, or 6.3 arc minutes: above
# the 5 arc minutes of a letter at the limit of normal (20/20) vision. Small, but read without
# zooming; a 10 pt label in a 6.4 in figure shrunk to a 390 px phone's column is about 7.3 px.

import json  # noqa: E402

import test_figures  # noqa: E402  (tests/ is on sys.path: pytest's rootdir-relative import)

from tools import guards  # noqa: E402

#: Pixels of the PNG per CSS pixel of the page, at least (2 for a "retina" PNG, less rounding).
FIGURE_DENSITY = 1.9
#: The smallest text in a figure, in CSS px, as the page shows it (see above).
SMALLEST_TEXT_PX = 7.0


def figures_of_the_book():
    """``(page, figure name, notebook name)`` of every figure the chapters show, in order."""
    return [(f"chapters/{path.stem}.html", name, path.name) for path in guards.chapter_notebooks()
            for name in guards.figures(json.loads(path.read_text(encoding="utf-8")))]


#: Figures known to fail a test below, with the reason (remove an entry once its figure passes).
KNOWN_SMALL_TEXT = {}


def _figure_params(known=None):
    """One parameter per figure; a chapter whose stored figures are stale (test_figures.STALE), or a
    figure in ``known``, may fail (non-strict xfail, with the reason)."""
    params = []
    for page, name, notebook in figures_of_the_book():
        reasons = [test_figures.STALE.get(notebook), (known or {}).get(name)]
        reason = "; ".join(r for r in reasons if r)
        params.append(pytest.param(page, name, id=name, marks=[pytest.mark.xfail(reason=reason, strict=False)]
                                   if reason else []))
    return params


def _memory_curves():
    """Chapter 52's figure, drawn by its cell's own source (the sizes are literals there; the
    chapter's N = 8 x 4096 tokens and H = 4096, and its GiB, come from earlier cells)."""
    from lib import plots

    nb = json.loads((ROOT / "chapters" / "52_at_scale.ipynb").read_text(encoding="utf-8"))
    (cell,) = [c for c in nb["cells"]
               if c["metadata"].get("mystnb", {}).get("figure", {}).get("name") == "fig-scale-memory"]
    head, call = "".join(cell["source"]).split("plots.memory_curves(", 1)
    namespace = {"plots": plots, "gib": lambda n: n / 2**30, "tokens": 8 * 4096, "hidden": 4096}
    exec(compile(head, "<chapter 52 figure cell>", "exec"), namespace)
    return eval(compile("plots.memory_curves(" + call, "<chapter 52 figure call>", "eval"), namespace)


def _reliability_diagram():
    """Chapter 65's figure with its three labels and ten bins; the data are stand-ins, which change
    no text size (the legend's ECE has the same printed format)."""
    import torch

    from lib import plots

    gen = torch.Generator().manual_seed(0)
    target = torch.randint(0, 10, (400,), generator=gen)
    probs = torch.rand(400, 10, generator=gen).softmax(1)
    return plots.reliability_diagram([(label, probs, target) for label in
                                      ("as trained", "divided by T", "label_smoothing=0.1")], n_bins=10)


#: Figures whose chapter call has no literal arguments (so test_figures.redraw cannot draw them):
#: each drawn again by the chapter's own test module, or as above.
REDRAWS = {
    "fig-next-token-training": lambda: importlib.import_module("tests.test_ch51").chapter_figure()[0],
    "fig-distillation-gradient": lambda: importlib.import_module("tests.test_ch62").figure(),
    "fig-contrastive-scale": lambda: importlib.import_module("tests.test_ch63").figure(),
    "fig-scale-memory": _memory_curves,
    "fig-reliability": _reliability_diagram,
}


@functools.cache
def smallest_points(name):
    """The size in points of the smallest text of the figure ``name``, and the figure's dpi."""
    for _, _, _, nb, index, call in test_figures.stored_figures():
        if nb["cells"][index]["metadata"]["mystnb"]["figure"]["name"] == name:
            figure = test_figures.redraw(nb, index, call)
            return test_figures.smallest_text(figure), figure.dpi
    if name in REDRAWS:
        figure = REDRAWS[name]()
        return test_figures.smallest_text(figure), figure.dpi
    raise AssertionError(f"no chapter cell draws the figure {name!r}")


FIGURE_STATE = """(name) => {
  const figure = document.getElementById(name), img = figure.querySelector('img');
  const r = img.getBoundingClientRect(), article = document.querySelector('article');
  const a = article.getBoundingClientRect(), s = getComputedStyle(article);
  return {natural: img.naturalWidth, naturalHeight: img.naturalHeight, width: r.width, height: r.height,
          cssWidth: parseFloat(img.style.width) || img.naturalWidth,
          left: r.left, right: r.right, viewport: window.innerWidth,
          columnLeft: a.left + parseFloat(s.paddingLeft), columnRight: a.right - parseFloat(s.paddingRight),
          scrolls: figure.scrollWidth > figure.clientWidth + 1};
}"""


def figure_state(browser, site, page, name, width):
    visit = PageVisit(browser, site, page, viewport={"width": width, "height": 900})
    try:
        return visit.page.evaluate(FIGURE_STATE, name)
    finally:
        visit.close()


def test_every_figure_is_tested():
    """The figure tests below must not pass vacuously: they see every figure of the chapters."""
    assert len(figures_of_the_book()) >= 5


@pytest.mark.parametrize("page, name", _figure_params())
def test_figure_is_sharp_on_a_high_density_screen(site, browser, page, name):
    """At 1400 px the PNG has at least 1.9 of its pixels per CSS pixel it covers."""
    state = figure_state(browser, site, page, name, 1400)
    assert state["natural"] >= FIGURE_DENSITY * state["width"], state


@pytest.mark.parametrize("page, name", _figure_params(KNOWN_SMALL_TEXT))
def test_figure_fits_and_reads_on_a_phone(site, browser, page, name):
    """At 390 px the figure lies within the text column, keeps its aspect ratio, and its
    smallest text is at least SMALLEST_TEXT_PX CSS px."""
    state = figure_state(browser, site, page, name, 390)
    assert state["columnLeft"] - 0.5 <= state["left"] and state["right"] <= state["columnRight"] + 0.5, state
    assert state["right"] <= state["viewport"] and not state["scrolls"], state
    aspect, drawn = state["naturalHeight"] / state["natural"], state["height"] / state["width"]
    assert abs(drawn / aspect - 1) < 0.01, f"the figure is squashed: {state}"
    points, dpi = smallest_points(name)
    text_px = points / 72 * dpi * state["width"] / state["cssWidth"]
    assert text_px >= SMALLEST_TEXT_PX, f"smallest text {points} pt shown at {text_px:.2f} CSS px: {state}"


NUMREFS = """() => Array.from(document.querySelectorAll('article a.reference.internal'))
  .filter(a => a.querySelector('span.std-numref'))
  .map(a => ({href: a.href, text: a.textContent.trim()}))"""

FIGURE_NUMBERS = """() => Array.from(document.querySelectorAll('article figure[id]'))
  .map(f => ({id: f.id, number: (f.querySelector('.caption-number') || {textContent: ''}).textContent.trim()}))"""


def test_figures_are_referred_to_by_number(site, chapter_pages):
    """Every {numref} renders as "Fig. N", links to the figure numbered N, and every figure of
    the book (but those guards.UNREFERENCED_FIGURES lists) is the target of one."""
    numbers, links = {}, []
    for path, chapter in chapter_pages.items():
        for figure in chapter["figures"]:
            numbers[f"{site}{path}#{figure['id']}"] = figure["number"]
        links += chapter["numrefs"]
    figure_names = {name for _, name, _ in figures_of_the_book()}
    assert {url.split("#")[1] for url in numbers} == figure_names
    for link in links:
        assert re.fullmatch(r"Fig\. \d+", link["text"]), link
        assert numbers.get(link["href"]) == link["text"], f"{link} points at no figure of that number"
    referred = {link["href"].split("#")[1] for link in links}
    assert figure_names - referred == set(guards.UNREFERENCED_FIGURES), "figures that no text refers to"
