"""A corpus of real error shapes, each as its library raises it, with where the shape comes from and what
the classifier should make of it (category, reason, retry hint, and which error it is).

Each family module (``python``, ``databases``, ``brokers``, ``providers``, ``hints``, ...) holds a list
``SHAPES``; :data:`ALL_SHAPES` is all of them. ``tests/unit/test_corpus.py`` checks them;
``python -m tests.corpus`` prints the classifier's report, family by family.
"""

from __future__ import annotations

import importlib
import pkgutil

from tests.corpus.shape import Shape

__all__ = ["ALL_SHAPES", "Shape", "family_modules"]


def family_modules() -> list[str]:
    """The names of the family modules of the corpus, sorted."""
    here = importlib.import_module(__name__).__path__
    return sorted(m.name for m in pkgutil.iter_modules(here) if m.name not in {"shape", "report", "__main__"})


def _all_shapes() -> tuple[Shape, ...]:
    shapes: list[Shape] = []
    for name in family_modules():
        shapes.extend(importlib.import_module(f"{__name__}.{name}").SHAPES)
    return tuple(shapes)


#: Every shape of every family module.
ALL_SHAPES: tuple[Shape, ...] = _all_shapes()
