"""The classifier's report on the corpus: each shape classified, accuracy per family, and the fingerprint
groups that split (one error, several fingerprints) or merge (several errors, one fingerprint)."""

from __future__ import annotations

import collections
import dataclasses
import math
from collections.abc import Sequence

from error_handling.classification import Classification
from error_handling.classifier import Classifier
from tests.corpus.shape import Shape

#: The clock of the classifier (2026-01-01T00:00:00Z): hints given as dates are relative to it.
NOW = 1767225600.0


@dataclasses.dataclass(frozen=True)
class Result:
    """One shape and its classification."""

    shape: Shape
    got: Classification

    @property
    def category_ok(self) -> bool:
        return self.got.category is self.shape.category

    @property
    def reason_ok(self) -> bool:
        return self.got.reason == self.shape.reason_code

    @property
    def hint_ok(self) -> bool:
        want, got = self.shape.hint, self.got.retry_after
        if want is None or got is None:
            return want is got
        return math.isclose(want, got, rel_tol=1e-9, abs_tol=1e-6)

    def describe(self) -> str:
        s, g = self.shape, self.got
        return (
            f"{s.family}/{s.group}: want {s.category.value}/{s.reason_code} hint {s.hint}, "
            f"got {g.category.value}/{g.reason} hint {g.retry_after} by {g.rule} ({g.exc_type}: {g.message[:120]!r})"
        )


def classify_all(shapes: Sequence[Shape], classifier: Classifier | None = None) -> list[Result]:
    """Classify every shape (each error built anew)."""
    classifier = classifier or Classifier(clock=lambda: NOW)
    return [Result(shape, classifier.classify(shape.make())) for shape in shapes]


def splits(results: Sequence[Result]) -> dict[str, set[str]]:
    """Groups whose shapes got more than one fingerprint, with their fingerprints."""
    by_group: dict[str, set[str]] = collections.defaultdict(set)
    for r in results:
        by_group[r.shape.group].add(r.got.fingerprint)
    return {group: fps for group, fps in by_group.items() if len(fps) > 1}


def merges(results: Sequence[Result]) -> dict[str, set[str]]:
    """Fingerprints shared by more than one group, with those groups."""
    by_fp: dict[str, set[str]] = collections.defaultdict(set)
    for r in results:
        by_fp[r.got.fingerprint].add(r.shape.group)
    return {fp: groups for fp, groups in by_fp.items() if len(groups) > 1}


def report(results: Sequence[Result]) -> str:
    """The report: one line per family (shapes, category, reason and hint accuracy), the totals, then
    every miss, split and merge."""
    families: dict[str, list[Result]] = collections.defaultdict(list)
    for r in results:
        families[r.shape.family].append(r)
    lines = [f"{'family':<22} {'shapes':>6} {'category':>9} {'reason':>8} {'hint':>6}"]

    def row(name: str, rs: Sequence[Result]) -> str:
        n = len(rs)
        pct = lambda k: f"{100 * sum(getattr(r, k) for r in rs) / n:.1f}%"  # noqa: E731
        return f"{name:<22} {n:>6} {pct('category_ok'):>9} {pct('reason_ok'):>8} {pct('hint_ok'):>6}"

    lines += [row(name, rs) for name, rs in sorted(families.items())]
    lines.append(row("all", results))
    misses = [r.describe() for r in results if not (r.category_ok and r.reason_ok and r.hint_ok)]
    lines += ["", f"misses: {len(misses)}", *misses]
    split, merged = splits(results), merges(results)
    lines += ["", f"split groups: {len(split)}", *sorted(split)]
    lines += ["", f"merged groups: {len(merged)}", *sorted(", ".join(sorted(g)) for g in merged.values())]
    return "\n".join(lines)
