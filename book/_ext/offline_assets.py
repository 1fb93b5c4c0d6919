"""Serve MathJax, require.js and the Jupyter widget manager from the built book, not from a CDN.

`make book` and `make test` install the pinned npm packages of `book/_assets/package.json` with
`npm ci` (into `book/_assets/node_modules`, which is never committed). This extension copies the
files the pages load into `_static/vendor/` of the HTML output; `_config.yml` points
`mathjax_path` and myst-nb's `nb_ipywidgets_js` at them. A build without the packages stops with
an error that says how to install them, rather than writing pages that silently need a network.
"""
import shutil
from pathlib import Path

from sphinx.errors import ExtensionError

# (package folder in node_modules, file or folder inside it, destination under _static/vendor)
ASSETS = [
    ("mathjax", "es5", "mathjax"),
    ("requirejs", "require.js", "require.js"),
    # One self-contained bundle: it defines the html-manager and the widget modules it renders
    # (@jupyter-widgets/base, controls and output), so built-in widgets need nothing else.
    ("@jupyter-widgets/html-manager", "dist/embed-amd.js", "embed-amd.js"),
]
# MathJax's other combined components are never loaded by tex-mml-chtml.js (extensions and the
# menu's renderers load from input/, output/, a11y/ and ui/); latest.js would fetch from a CDN.
MATHJAX_UNUSED = {"latest.js", "node-main.js", "tex-chtml.js", "tex-chtml-full.js",
                  "tex-chtml-full-speech.js", "tex-svg.js", "tex-svg-full.js", "tex-mml-svg.js",
                  "mml-chtml.js", "mml-svg.js"}


def _node_modules(app):
    folder = Path(app.config.offline_assets_node_modules)
    return folder if folder.is_absolute() else Path(app.srcdir) / folder


def check_installed(app):
    if app.builder.format != "html":
        return
    root = _node_modules(app)
    missing = [f"{package}/{inner}" for package, inner, _ in ASSETS
               if not (root / package / inner).exists()]
    if missing:
        raise ExtensionError(
            f"offline_assets_node_modules={str(root)!r} lacks {', '.join(missing)}; expected "
            "the npm packages of book/_assets/package.json: run `make assets` "
            "(npm ci in book/_assets)")


def copy_assets(app, exception):
    if exception is not None or app.builder.format != "html":
        return
    root = _node_modules(app)
    vendor = Path(app.outdir) / "_static" / "vendor"
    vendor.mkdir(parents=True, exist_ok=True)
    for package, inner, target in ASSETS:
        source = root / package / inner
        if source.is_dir():
            def unused(folder, names, top=source):
                return [n for n in names if Path(folder) == top and n in MATHJAX_UNUSED]
            shutil.copytree(source, vendor / target, dirs_exist_ok=True, ignore=unused)
        else:
            shutil.copy2(source, vendor / target)


def setup(app):
    app.add_config_value("offline_assets_node_modules", "book/_assets/node_modules", "html")
    app.connect("builder-inited", check_installed)
    app.connect("build-finished", copy_assets)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
