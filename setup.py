"""Package discovery for roberta-tf; everything else about the project is in pyproject.toml.

`converters/` and `serving/` sit at the top of the repository, so the folder layout shows the
architecture, but they install as `roberta_tf.converters` and `roberta_tf.serving`: generic
top-level modules named `converters` or `serving` in users' site-packages would collide with
other projects. setuptools cannot combine that mapping with automatic discovery in
pyproject.toml, so this file finds every package (any folder with an `__init__.py`) below the
three roots: a new subpackage can never be missing from a wheel again. `.ci/run` builds the
wheel, installs it non-editable in a fresh venv and imports every module from it.
"""

from setuptools import find_packages, setup

# Installed package name -> folder in the repository.
ROOTS = {"roberta_tf": "roberta_tf", "roberta_tf.converters": "converters", "roberta_tf.serving": "serving"}


def packages():
    found = []
    for package, folder in ROOTS.items():
        found += [package] + [f"{package}.{sub}" for sub in find_packages(folder)]
    return found


setup(package_dir=ROOTS, packages=packages())
