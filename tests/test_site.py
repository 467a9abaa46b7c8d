"""The built site in a browser: every page complete, offline, typeset and linked, and read whole
on a desktop, on a phone and in print.

The book is built once per run with warnings as errors (``built_book`` in conftest.py), served on
127.0.0.1 and opened in headless Chromium (tests/browser.py). ``pages_read`` opens every page
once, at 1400 px: it reads there what the tests below check on a desktop, then narrows the same
page to a phone's 390 px and reads it again, then prints it (A4) and reads that. That a page
narrowed to 390 px is laid out as one opened at 390 px is a test of its own. Every page of the
module opens in one tab (``tab``), one after another, as in a reader's browser. Screenshots land in
``_build/screenshots``. The downloadable book is test_site_download.py.
"""

import functools
import importlib
import json
import re
import urllib.parse
from pathlib import Path

import pytest

from tests import test_figures
from tests.browser import (
    DESKTOP,
    FIGURE_STATES,
    HTML,
    NAVIGATION_STATE,
    PHONE,
    PRINT_A4,
    ROOT,
    Tab,
    check_links,
    figure_params,
    figures_of_the_book,
    pages,
    require_chromium,
    sweep,
    visible,
)
from tools import guards

require_chromium()

pytestmark = pytest.mark.heavy  # see conftest.py

SHOTS = ROOT / "_build" / "screenshots"

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

WIDE_OUTPUTS = """() => Array.from(document.querySelectorAll('article div.cell_output pre'))
  .filter(e => e.getBoundingClientRect().width > 0 && e.scrollWidth > e.clientWidth + 1)
  .map(e => e.textContent.slice(0, 80))"""

EMPTY_CODE_BOXES = """() => Array.from(document.querySelectorAll('article div.highlight, article div.cell_output'))
  .filter(e => e.getBoundingClientRect().height > 0 && e.textContent.trim() === '' && !e.querySelector('img'))
  .map(e => e.outerHTML.slice(0, 120))"""

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

BIBLIOGRAPHY = """() => Array.from(document.querySelectorAll('div.citation')).map(c => ({
  id: c.id,
  label: c.querySelector('.label').textContent.replace(/^\\[|\\]$/g, ''),
  text: c.textContent,
  links: Array.from(c.querySelectorAll('a[href^="http"]')).map(a => a.href),
}))"""

CITATIONS = """() => Array.from(document.querySelectorAll('a[href*="references.html#"]'))
  .map(a => ({target: a.getAttribute('href').split('#')[1], text: a.textContent}))"""

NUMREFS = """() => Array.from(document.querySelectorAll('article a.reference.internal'))
  .filter(a => a.querySelector('span.std-numref'))
  .map(a => ({href: a.href, text: a.textContent.trim()}))"""

MATHJAX_SCRIPTS = """() => document.querySelectorAll('script[src*="_static/mathjax"]').length"""

FIGURE_NUMBERS = """() => Array.from(document.querySelectorAll('article figure[id]'))
  .map(f => ({id: f.id, number: (f.querySelector('.caption-number') || {textContent: ''}).textContent.trim()}))"""


def _read(page):
    """What the tests below read on one page at 1400 px, then at 390 px (``phone``), then in print."""
    state = {"broken": page.evaluate(BROKEN_IMAGES), "without_alt": page.evaluate(IMAGES_WITHOUT_ALT),
             "math": page.evaluate(MATH_STATE), "links": page.evaluate(LINKS),
             "images": page.evaluate("() => document.images.length"),
             "mathjax_scripts": page.evaluate(MATHJAX_SCRIPTS),
             "citations": page.evaluate(CITATIONS), "bibliography": page.evaluate(BIBLIOGRAPHY),
             "figure_numbers": page.evaluate(FIGURE_NUMBERS), "numrefs": page.evaluate(NUMREFS),
             "figures": page.evaluate(FIGURE_STATES), "wide": page.evaluate(WIDE_OUTPUTS)}
    page.set_viewport_size(PHONE)
    state["phone"] = _read_phone(page)
    page.emulate_media(media="print")
    page.set_viewport_size(PRINT_A4)
    state["print_wide"] = page.evaluate(WIDE_OUTPUTS)
    state["print_empty"] = page.evaluate(EMPTY_CODE_BOXES)
    return state


def _read_phone(page):
    return {"wider": page.evaluate(PAGE_WIDER_THAN_SCREEN), "equations": page.evaluate(EQUATIONS),
            "numbered": page.evaluate("() => document.querySelectorAll('article div.math .eqno').length"),
            "figures": page.evaluate(FIGURE_STATES)}


@pytest.fixture(scope="module")
def tab(site, browser):
    """The one tab in which this module opens the site's pages (tests/browser.py)."""
    tab = Tab(browser, site)
    yield tab
    tab.close()


@pytest.fixture(scope="module")
def pages_read(tab):
    """``{page: what it shows}`` for every page, each opened once (see ``_read``)."""
    return sweep(tab, DESKTOP, _read)


#: Pages whose layout at 390 px is also read from a page opened at 390 px: the longest chapter,
#: the one with the most equations, and the landing page.
LOADED_AT_PHONE_WIDTH = ["chapters/52_at_scale.html", "chapters/24_numerical_stability.html", "intro.html"]


@pytest.mark.parametrize("path", LOADED_AT_PHONE_WIDTH)
def test_a_page_narrowed_to_a_phone_is_one_opened_on_a_phone(pages_read, tab, path):
    """The phone tests read each page narrowed from 1400 px to 390 px: that must be the layout a
    phone gets when it opens the page at 390 px (nothing the theme or MathJax lays out once, at
    load, depends on the width it loaded at)."""
    assert _read_phone(tab.open(path, viewport=PHONE)) == pages_read[path]["phone"]


@pytest.mark.parametrize("path", pages())
def test_page_is_complete_offline(site, pages_read, path):
    state = pages_read[path]
    assert state["external"] == [], "requests that left the site"
    assert state["failed"] == [], "resources that did not load"
    assert state["errors"] == [], "JavaScript console errors"
    assert state["broken"] == [], "images that did not load"
    assert state["without_alt"] == [], "figures without alt text"
    math = state["math"]
    assert math["typeset"] == math["math"], f"{math['math'] - math['typeset']} formulas not typeset"
    assert math["raw"] == [], "raw TeX delimiters left in the text"
    check_links(site, state["links"])


def test_every_built_page_is_tested(site):
    built = {p.relative_to(HTML).as_posix() for p in HTML.rglob("*.html")
             if not p.relative_to(HTML).parts[0].startswith("_")}
    assert built == set(pages()) | {"index.html"}  # index.html only redirects to the landing page


def test_index_redirects_to_the_landing_page(tab):
    page = tab.open("index.html", settle=False)
    page.wait_for_url("**/intro.html", timeout=10_000)
    assert "Cross-Entropy, Executed" in page.title()


def test_chapters_have_math_and_figures(pages_read):
    """The typesetting check above must not pass vacuously."""
    state = pages_read["chapters/11_entropy.html"]
    assert state["math"]["math"] >= 10 and state["math"]["typeset"] == state["math"]["math"]
    assert state["images"] >= 1 and state["mathjax_scripts"] == 1


def test_outputs_read_whole_on_a_desktop_and_in_print(pages_read):
    """No output scrolls sideways at 1400 px or on a printed A4 page, and print shows no empty code box."""
    for path, state in pages_read.items():
        assert state["wide"] == [], f"{path}: outputs wider than their box"
        assert state["print_wide"] == [], f"{path}: printed outputs cut at the right"
        assert state["print_empty"] == [], f"{path}: empty code boxes in print"


def test_no_page_scrolls_sideways_on_a_phone(pages_read):
    """At 390 px no page is wider than the screen: a long identifier in the text or a long word in
    a heading breaks across lines (code blocks and wide tables scroll inside their own box)."""
    for path, state in pages_read.items():
        assert state["phone"]["wider"] == [], f"{path}: wider than a 390 px screen"


def test_equations_fit_on_a_phone(pages_read):
    """At 390 px a display equation has the page's whole width, its number is never over it, and
    a formula wider than that scrolls inside its box with a visible cue (the scroll shadows)."""
    for path, state in pages_read.items():
        assert state["phone"]["equations"] == [], path
    numbered = sum(state["phone"]["numbered"] for state in pages_read.values())
    assert numbered >= 20  # numbered equations were there to check


def test_navigation_opens_on_a_phone(tab):
    """At 390 px both sidebars are hidden; the menu and "Contents" buttons open them."""
    page = tab.open("chapters/31_weight.html", viewport=PHONE)
    state = page.evaluate(NAVIGATION_STATE)
    assert state["primaryLinks"] == 0 and state["secondaryLinks"] == 0, state
    visible(page, ".primary-toggle").click()
    page.wait_for_selector("#pst-primary-sidebar-modal[open]", timeout=5_000)
    state = page.evaluate(NAVIGATION_STATE)
    assert state["primaryLinks"] >= 10, state  # the book's table of contents, clickable
    page.keyboard.press("Escape")
    page.wait_for_selector("#pst-primary-sidebar-modal:not([open])", state="attached", timeout=5_000)
    visible(page, ".secondary-toggle").click()
    page.wait_for_selector("#pst-secondary-sidebar-modal[open]", timeout=5_000)
    state = page.evaluate(NAVIGATION_STATE)
    assert state["secondaryLinks"] >= 3, state  # the page's sections


def test_navigation_on_a_desktop(tab):
    """At 1400 px both sidebars are shown, the menu button hides and shows the primary one,
    and there is one search box and no empty top bar."""
    page = tab.open("chapters/31_weight.html", viewport=DESKTOP)
    state = page.evaluate(NAVIGATION_STATE)
    assert state["primaryLinks"] >= 10 and state["secondaryLinks"] >= 3, state
    assert state["searchBoxes"] == 1 and state["header"] == 0, state
    toggle = visible(page, ".primary-toggle")
    toggle.click()
    page.wait_for_function("() => document.querySelector('#pst-primary-sidebar')"
                           ".getBoundingClientRect().right <= 0")
    assert page.evaluate(NAVIGATION_STATE)["primaryLinks"] == 0
    toggle.click()
    page.wait_for_function("() => document.querySelector('#pst-primary-sidebar').getBoundingClientRect().left >= 0")
    assert page.evaluate(NAVIGATION_STATE)["primaryLinks"] >= 10


#: The five posts the book was born from, as they show themselves (title; author where shown).
SEED_POSTS = ["CrossEntropyLossの挙動を確認する", "What NLLLoss computes", "olxtar. [PyTorch] nn.CrossEntropyLoss()",
              "강의찬 (Kang Uichan). cross entropy", "Pytorch中的CrossEntropy"]


def test_bibliography(pages_read):
    """Titles as written, URLs as links, one label per work, and the text cites by the list's labels."""
    entries = pages_read["references.html"]["bibliography"]
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
    for path, state in pages_read.items():
        if not path.startswith("chapters/"):
            continue
        for citation in state["citations"]:
            assert by_id.get(citation["target"]) == citation["text"], (path, citation)
            cited.add(citation["target"])
    assert len(cited) >= 5


def search(tab, query):
    """The result links of the site's own search for ``query``."""
    page = tab.open("search.html?q=" + urllib.parse.quote(query))
    page.wait_for_selector("#search-results ul.search li a", timeout=20_000)
    return page.evaluate(
        "() => Array.from(document.querySelectorAll('#search-results ul.search li a')).map(a => a.href)")


def test_search_finds_the_ignore_index_chapter(tab):
    results = search(tab, "ignore_index")
    assert any("chapters/32_ignore_index.html" in href for href in results), results


def test_search_for_an_error_message_finds_its_explanation(tab):
    results = search(tab, "ignore_index is not supported for floating point target")
    assert any(page in href for href in results for page in ("errors.html", "chapters/32_ignore_index.html")), results


def snippets(tab, query):
    """The text of each result snippet of the site's search for ``query``."""
    page = tab.open("search.html?q=" + urllib.parse.quote(query))
    page.wait_for_selector("#search-results ul.search li p.context", timeout=20_000)
    page.wait_for_function(  # every result has been listed, with its snippet
        "() => (document.querySelector('#search-results .search-summary') || {}).textContent?.includes('finished')")
    return page.evaluate(
        "() => Array.from(document.querySelectorAll('#search-results ul.search li p.context'))"
        ".map(p => p.textContent)")


def test_search_snippets_are_article_text(tab):
    """No toolbar or table-of-contents text, no raw TeX in the snippets under the search results."""
    found = snippets(tab, "entropy") + snippets(tab, "weight")
    assert len(found) >= 10
    for snippet in found:
        for noise in (".ipynb", ".pdf", " Contents ", "\\[", "\\(", "\\sum", "\\log", "\\frac"):
            assert noise not in snippet, (noise, snippet)


def test_every_page_has_a_title_a_description_and_an_icon(site):
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


def test_screenshots(tab):
    """Landing page and one chapter in light and dark mode, for a person to look at."""
    SHOTS.mkdir(parents=True, exist_ok=True)
    shots = [("intro.html", "light", "landing"), ("chapters/11_entropy.html", "light", "chapter-light"),
             ("chapters/11_entropy.html", "dark", "chapter-dark")]
    for path, scheme, name in shots:
        page = tab.open(path, color_scheme=scheme)
        page.evaluate(f"() => {{ document.documentElement.dataset.theme = '{scheme}'; }}")
        page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=False)
        assert (SHOTS / f"{name}.png").stat().st_size > 10_000


# --------------------------------------------------------------------------------------------
# Figures: sharp on a high-density screen, referred to by number
# --------------------------------------------------------------------------------------------

#: Pixels of the PNG per CSS pixel of the page, at least (2 for a "retina" PNG, less rounding).
FIGURE_DENSITY = 1.9


def test_every_figure_is_tested(pages_read):
    """The figure tests must not pass vacuously: they see every figure of the chapters, and the
    page shows each of them."""
    figures = figures_of_the_book()
    assert len(figures) >= 5
    for page, name, _ in figures:
        assert name in pages_read[page]["figures"], f"{page} shows no figure {name}"


@pytest.mark.parametrize("page, name", figure_params())
def test_figure_is_sharp_on_a_high_density_screen(pages_read, page, name):
    """At 1400 px the PNG has at least 1.9 of its pixels per CSS pixel it covers."""
    state = pages_read[page]["figures"][name]
    assert state["natural"] >= FIGURE_DENSITY * state["width"], state


def test_figures_are_referred_to_by_number(site, pages_read):
    """Every {numref} renders as "Fig. N", links to the figure numbered N, and every figure of
    the book (but those guards.UNREFERENCED_FIGURES lists) is the target of one."""
    numbers, links = {}, []
    for path, state in pages_read.items():
        if not path.startswith("chapters/"):
            continue
        for figure in state["figure_numbers"]:
            numbers[f"{site}{path}#{figure['id']}"] = figure["number"]
        links += state["numrefs"]
    figure_names = {name for _, name, _ in figures_of_the_book()}
    assert {url.split("#")[1] for url in numbers} == figure_names
    for link in links:
        assert re.fullmatch(r"Fig\. \d+", link["text"]), link
        assert numbers.get(link["href"]) == link["text"], f"{link} points at no figure of that number"
    referred = {link["href"].split("#")[1] for link in links}
    assert figure_names - referred == set(guards.UNREFERENCED_FIGURES), "figures that no text refers to"


# --------------------------------------------------------------------------------------------
# Figures on a phone: whole and legible
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

#: The smallest text in a figure, in CSS px, as the page shows it (see above).
SMALLEST_TEXT_PX = 7.0


#: Figures known to fail a test below, with the reason (remove an entry once its figure passes).
KNOWN_SMALL_TEXT = {}


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


@pytest.mark.parametrize("page, name", figure_params(KNOWN_SMALL_TEXT))
def test_figure_fits_and_reads_on_a_phone(pages_read, page, name):
    """At 390 px the figure lies within the text column, keeps its aspect ratio, and its
    smallest text is at least SMALLEST_TEXT_PX CSS px."""
    state = pages_read[page]["phone"]["figures"][name]
    assert state["columnLeft"] - 0.5 <= state["left"] and state["right"] <= state["columnRight"] + 0.5, state
    assert state["right"] <= state["viewport"] and not state["scrolls"], state
    aspect, drawn = state["naturalHeight"] / state["natural"], state["height"] / state["width"]
    assert abs(drawn / aspect - 1) < 0.01, f"the figure is squashed: {state}"
    points, dpi = smallest_points(name)
    text_px = points / 72 * dpi * state["width"] / state["cssWidth"]
    assert text_px >= SMALLEST_TEXT_PX, f"smallest text {points} pt shown at {text_px:.2f} CSS px: {state}"
