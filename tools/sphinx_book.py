"""Sphinx extension of the book: MathJax served from the site itself, and the error index.

Loaded by Jupyter Book through ``sphinx.local_extensions`` in ``_config.yml``.

- MathJax 3 comes from the PyPI package ``django-static-mathjax`` (installed by
  ``requirements.txt``; it is plain static files and does not need Django). Its ``es5``
  build is copied into ``_static/mathjax`` of the site and ``mathjax_path`` points there,
  so pages typeset their math without a network.
- ``errors.md`` is generated from the chapters before the table of contents is read
  (:mod:`tools.error_index`), and ``status.md`` from the repository's records of where the
  outputs were checked (:mod:`tools.status`).
- The bibliography style ``book`` (``bibtex_default_style`` in ``_config.yml``): pybtex's
  ``unsrt`` formatting with titles kept as written (``torch.nn.CrossEntropyLoss``, not
  "Torch.nn.crossentropyloss") and labels "Author Year" (:class:`AuthorYearLabels`), the
  same in the text (``bibtex_reference_style: label``) and in the list.
- The book as one archive to run, ``cross-entropy-executed.zip`` at the site's root
  (:mod:`tools.archive`), linked from every page's footer (``_templates/run-book.html``)
  and from the page "Run the book yourself" (``run.md``).
- The book's stylesheet (``tools/static/book.css``): outputs wrap instead of scrolling
  sideways; display equations scroll inside their own box, with the number beside them, or
  under them on a phone.
- Small things of every page (:file:`tools/static`): a favicon; a ``<meta name="description">``
  from the page's first paragraphs; search-result snippets from the article alone, without
  the toolbar, the page's contents or raw TeX (``search-snippets.js``); the landing page's
  title without the book's name twice.
- The repository buttons (:mod:`tools.colab`): ``repository: url:`` in ``_config.yml`` is the one
  place that names the repository. Set (a GitHub URL), every page gets the theme's repository
  and issue buttons and every chapter a Colab launch button; empty, none of them (the theme
  options are set here, and ``html_theme_options`` in ``_config.yml`` must not set them). With a
  repository set, a chapter whose Colab cell does not match it is a warning.
- A first-time visitor has no stored light/dark choice; the theme's script then logs
  "Got invalid theme mode" as a console error. A one-line script sets the mode to "auto"
  (follow the system) before the theme reads it.
"""

import shutil
from html import escape
from pathlib import Path

from docutils import nodes
from pybtex.plugin import register_plugin
from pybtex.style.formatting.unsrt import Style as UnsrtStyle
from pybtex.style.labels import BaseLabelStyle
from pybtex.style.template import field, sentence
from sphinx.errors import ExtensionError
from sphinx.util import logging

from tools import archive, colab, error_index, status

LOGGER = logging.getLogger(__name__)

MATHJAX_SCRIPT = "tex-mml-chtml.js"
# What the combined script loads: itself, its fonts, and the pieces its menu may fetch on demand.
MATHJAX_PARTS = [MATHJAX_SCRIPT, "output/chtml/fonts", "input/tex/extensions", "a11y", "ui", "sre"]


def mathjax_source():
    """Return the folder of MathJax's es5 build inside the installed package."""
    try:
        import mathjax  # the django-static-mathjax distribution
    except ImportError as err:
        raise ExtensionError("MathJax is not installed: pip install -r requirements.txt") from err
    folder = Path(mathjax.__file__).parent / "static" / "mathjax" / "es5"
    if not (folder / MATHJAX_SCRIPT).exists():
        raise ExtensionError(f"no {MATHJAX_SCRIPT} in {folder}")
    return folder


def _configure(app, config):
    mathjax_source()  # fail early if it is missing
    config.mathjax_path = f"mathjax/{MATHJAX_SCRIPT}"
    error_index.write(app.srcdir)
    status.write(app.srcdir)
    _repository_buttons(app, config)


def _repository_buttons(app, config):
    """The theme's repository, issue and Colab buttons from ``repository:`` in ``_config.yml``."""
    options = config.html_theme_options
    owned = colab.theme_options(None).keys() | {"repository_branch", "path_to_docs"}
    if owned & options.keys():
        raise ExtensionError(f"html_theme_options in _config.yml sets {sorted(owned & options.keys())}: "
                             "the repository is set in one place, repository: url: (tools/colab.py)")
    try:
        repo = colab.repository(app.srcdir)
    except colab.RepositoryError as err:
        raise ExtensionError(str(err)) from err
    options.update(colab.theme_options(repo))
    if repo is not None:
        for path in colab.mismatches(app.srcdir):
            LOGGER.warning(f"{path}: its Colab cell does not match repository: in _config.yml "
                           "(run python -m tools.colab)")


def _copy_mathjax(app, exception):
    if exception is not None or app.builder.format != "html":
        return
    source, target = mathjax_source(), Path(app.outdir) / "_static" / "mathjax"
    for part in MATHJAX_PARTS:
        if (source / part).is_dir():
            shutil.copytree(source / part, target / part, dirs_exist_ok=True)
        elif (source / part).exists():
            target.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source / part, target / part)


class AuthorYearLabels(BaseLabelStyle):
    """Labels such as "Shannon 1948", "Kullback and Leibler 1951", "Szegedy et al. 2016".

    A corporate author written in braces (``{PyTorch contributors}``) is kept whole; a ``key``
    field names a work without an author (BibTeX's own use of ``key``); an entry without a
    year gets "n.d.". Two works that would share a label get "a", "b", ... after
    the year, so no label names two works.
    """

    def format_labels(self, sorted_entries):
        labels = [self.format_label(entry) for entry in sorted_entries]
        for label in labels:
            same = [i for i, other in enumerate(labels) if other == label]
            if len(same) > 1:
                for letter, i in zip("abcdefghijklmnopqrstuvwxyz", same, strict=False):
                    labels[i] = f"{label}{letter}"
        return iter(labels)

    @staticmethod
    def format_label(entry):
        people = entry.persons.get("author") or entry.persons.get("editor") or []
        names = [" ".join(p.last_names).replace("{", "").replace("}", "") for p in people]
        if "key" in entry.fields:
            who = entry.fields["key"]
        elif not names:
            who = "Anonymous"
        elif len(names) == 1:
            who = names[0]
        elif len(names) == 2:
            who = f"{names[0]} and {names[1]}"
        else:
            who = f"{names[0]} et al."
        return f"{who} {entry.fields.get('year', 'n.d.')}"


class BookStyle(UnsrtStyle):
    """pybtex's unsrt formatting, with "Author Year" labels and titles kept as written."""

    default_label_style = AuthorYearLabels

    def format_title(self, e, which_field, as_sentence=True):
        title = field(which_field)
        return sentence[title] if as_sentence else title


register_plugin("pybtex.style.formatting", "book", BookStyle)


DEFAULT_MODE_SCRIPT = 'if (!document.documentElement.dataset.mode) { document.documentElement.dataset.mode = "auto"; }'


STATIC = Path(__file__).parent / "static"
DESCRIPTION_LENGTH = 160


def _add_static(app):
    app.config.html_static_path.append(str(STATIC))
    app.config.html_favicon = str(STATIC / "favicon.svg")


def _describe_page(app, pagename, templatename, context, doctree):
    """A meta description from the page's first paragraph (the question, on a chapter)."""
    if doctree is None:
        return
    text = ""
    for paragraph in doctree.findall(nodes.paragraph):  # the first, or the first few if it is short
        text = f"{text} {' '.join(paragraph.astext().split())}".strip()
        if len(text) >= DESCRIPTION_LENGTH // 2:
            break
    if not text:
        return
    if len(text) > DESCRIPTION_LENGTH:
        text = text[: DESCRIPTION_LENGTH - 1].rsplit(" ", 1)[0] + "…"
    context["metatags"] = context.get("metatags", "") + f'\n<meta name="description" content="{escape(text)}" />'


def _write_archive(app, exception):
    if exception is None and app.builder.format == "html":
        archive.write(Path(app.outdir) / f"{archive.NAME}.zip")


def _title_once(app, exception):
    """``<title>Book — Book</title>`` on the landing page becomes ``<title>Book</title>``."""
    if exception is not None or app.builder.format != "html":
        return
    page = Path(app.outdir) / f"{app.config.root_doc}.html"
    if page.exists():
        html = page.read_text(encoding="utf-8")
        title = app.config.html_title
        page.write_text(html.replace(f"<title>{title} &#8212; {title}</title>", f"<title>{title}</title>"),
                        encoding="utf-8")


def setup(app):
    app.add_js_file(None, body=DEFAULT_MODE_SCRIPT)
    # deferred: it runs after the search page's searchtools.js, which the template adds last
    app.add_js_file("search-snippets.js", loading_method="defer")
    app.add_css_file("book.css")  # outputs wrap; equations scroll inside their box, numbers never over them
    app.connect("builder-inited", _add_static)
    app.connect("html-page-context", _describe_page)
    app.connect("build-finished", _title_once)
    app.connect("build-finished", _write_archive)
    app.connect("config-inited", _configure, priority=100)
    app.connect("build-finished", _copy_mathjax)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
