// Search result snippets from the article alone.
//
// Sphinx's search takes a result's snippet from the page's [role="main"] element, which in
// this theme also holds the article's toolbar (download buttons: ".ipynb", ".pdf"), the page's
// table of contents ("Contents") and the previous/next links; and the article's math is raw
// TeX ("\[ H(p, q) = -\sum ..."). This wraps Search.htmlToText so that those are gone before
// the snippet is cut: display math is dropped, inline math keeps its symbols without TeX.
(() => {
  if (typeof Search === "undefined" || !Search.htmlToText) return;
  const htmlToText = Search.htmlToText;
  const NOISE = [".bd-header-article", ".bd-sidebar-secondary", "#pst-page-toc-nav", ".prev-next-area",
                 "footer", ".onlyprint", "div.math", "mjx-container[display]"];
  Search.htmlToText = (htmlString, anchor) => {
    const doc = new DOMParser().parseFromString(htmlString, "text/html");
    doc.querySelectorAll(NOISE.join(", ")).forEach((e) => e.remove());
    doc.querySelectorAll("span.math").forEach((e) => {
      e.textContent = e.textContent.replace(/^\\\(|\\\)$/g, "").replace(/\\([a-zA-Z]+)/g, "$1")
        .replace(/[{}]/g, "").replace(/\s+/g, " ").trim();
    });
    return htmlToText(doc.documentElement.outerHTML, anchor);
  };
})();
