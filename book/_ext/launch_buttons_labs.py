"""Show the launch buttons (Binder, Colab) on the labs only.

sphinx-book-theme adds them to every page it takes for a notebook, MyST Markdown chapters
included, but Colab cannot open a `.md` file, so a chapter's button would lead nowhere. The
theme builds its header buttons in an ``html-page-context`` handler at priority 501; this one
runs just after it and drops the launch group from any page whose source is not an `.ipynb`
file. The chapters keep their download buttons.
"""
from pathlib import Path

LAUNCH_GROUP = "launch-buttons"  # the label sphinx-book-theme gives the group


def drop_launch_buttons(app, pagename, templatename, context, doctree):
    if pagename not in app.env.all_docs or Path(app.env.doc2path(pagename)).suffix == ".ipynb":
        return
    buttons = context.get("header_buttons")
    if buttons:
        buttons[:] = [b for b in buttons if b.get("label") != LAUNCH_GROUP]


def setup(app):
    app.connect("html-page-context", drop_launch_buttons, priority=502)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
