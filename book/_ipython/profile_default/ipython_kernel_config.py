# IPython configuration of the kernels that execute the book: `make book` and `make test` set
# IPYTHONDIR to book/_ipython for the build only; a reader's own Jupyter is untouched.
c = get_config()  # noqa: F821 (IPython defines it when it reads this file)

# Figures as PNGs at twice the pixel density ("retina"), shown at their usual size: sharp on
# high-density screens and when zoomed, and far lighter than SVG for the scatter plots of
# thousands of points.
c.InlineBackend.figure_formats = {"retina"}
# A build has nothing to remember between runs.
c.HistoryManager.enabled = False
