"""Sphinx settings of the site `make site` builds (tools/build_site.py stages the pages beside this file).

Jupyter Book 1's stack, without its wrapper: Sphinx, MyST-NB (notebooks as pages, never executed here: they come
executed from `make run`) and the Sphinx Book Theme. Nothing is fetched from the web when a page is viewed: MathJax
is served from _static/mathjax (copied by tools/build_site.py), the theme ships its fonts and icons, search is
Sphinx's own index.
"""

import os

REPOSITORY = os.environ.get("DDPM_SITE_REPOSITORY", "annotated-ddpm/annotated-ddpm")  # owner/name, set by build_site

project = "Annotated DDPM"
author = "the Annotated DDPM authors"
copyright = "the Annotated DDPM authors, MIT licence"
html_title = "Annotated DDPM"

extensions = ["myst_nb"]
exclude_patterns = ["_build", "**.ipynb_checkpoints"]
myst_enable_extensions = ["dollarmath", "amsmath", "colon_fence"]
myst_heading_anchors = 3
nb_execution_mode = "off"  # the notebooks were executed by `make run` (or, in `make test`, by nbval and JupyterLab)
nb_merge_streams = True  # a cell's printed lines in one block, not one block per write

mathjax_path = "mathjax/tex-chtml.js"  # served from the site itself: classrooms and CI have no internet

html_theme = "sphinx_book_theme"
html_static_path = ["_static"]
html_css_files = ["site.css"]
html_last_updated_fmt = None
html_copy_source = False  # the pages link each notebook on GitHub; copies of the executed ones would double the size
html_theme_options = {
    "repository_url": f"https://github.com/{REPOSITORY}",
    "repository_branch": "main",
    "path_to_docs": "notebooks",
    "use_repository_button": True,
    "use_download_button": False,  # it offers _sources/, which html_copy_source leaves out
    "home_page_in_toc": True,
    "show_toc_level": 2,
    "navigation_with_keys": False,
}


def setup(app):
    app.set_html_assets_policy("always")  # MathJax on every page: the sidebar's titles have math in them


html_context = {"default_mode": "light"}  # an explicit mode: the theme logs a console error when it has none
html_favicon = "_static/favicon.svg"
