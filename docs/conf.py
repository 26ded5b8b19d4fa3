"""Sphinx configuration of fastmlp's documentation.

Build: ``python -m sphinx -W --keep-going -b html docs docs/_build/html``
(``pip install -e ".[docs]"`` first). Every gallery example in ``examples/``
is executed.
"""

import os
import warnings

import fastmlp

project = "fastmlp"
author = "the fastmlp developers"
copyright = "2026, the fastmlp developers"
release = version = fastmlp.__version__

extensions = [
    "myst_parser",
    "numpydoc",
    "sphinx.ext.autodoc",
    "sphinx.ext.autosummary",
    "sphinx.ext.mathjax",
    "sphinx_gallery.gen_gallery",
]
source_suffix = {".rst": "restructuredtext", ".md": "markdown"}
exclude_patterns = ["_build", "auto_examples/*.ipynb", "auto_examples/*.py", "**/*.zip"]
myst_heading_anchors = 3

autosummary_generate = True
autodoc_default_options = {
    "members": True,
    "inherited-members": False,
    # scikit-learn's metadata-routing setters: documented by scikit-learn
    "exclude-members": ", ".join(
        f"set_{method}_request" for method in ("fit", "partial_fit", "score", "transform")
    ),
}
numpydoc_show_class_members = False  # the class page lists its methods itself
numpydoc_class_members_toctree = False

html_theme = "pydata_sphinx_theme"
html_title = f"fastmlp {version}"
html_theme_options = {
    "navigation_with_keys": False,
    "show_toc_level": 2,
}
html_static_path = []
templates_path = ["_templates"]

sphinx_gallery_conf = {
    "examples_dirs": "../examples",
    "gallery_dirs": "auto_examples",
    "filename_pattern": r"/plot_",  # run every example
    "abort_on_example_error": True,
    "doc_module": ("fastmlp",),
    "reference_url": {"fastmlp": None},
    "backreferences_dir": "gen_modules/backreferences",
    "download_all_examples": False,
    "remove_config_comments": True,
    "matplotlib_animations": False,
}

# Examples run in this process: Agg, and no interactive windows.
os.environ.setdefault("MPLBACKEND", "Agg")
warnings.filterwarnings("ignore", message="Matplotlib is currently using agg")
