"""The classifier on the corpus of real error shapes (tests/corpus): categories, reasons and stated retry
hints as documented, and one fingerprint per error, never shared by two."""

from __future__ import annotations

import pytest

from tests.corpus import ALL_SHAPES, family_modules
from tests.corpus.report import Result, classify_all, merges, report, splits


@pytest.fixture(scope="module")
def results() -> list[Result]:
    found = classify_all(ALL_SHAPES)
    print(report(found))
    return found


def test_the_corpus_holds_at_least_300_shapes_each_naming_its_source() -> None:
    assert len(ALL_SHAPES) >= 300
    assert family_modules()
    for shape in ALL_SHAPES:
        assert shape.source.startswith("https://"), shape
        assert shape.family and shape.group, shape


def test_at_least_98_percent_of_categories_are_right(results: list[Result]) -> None:
    wrong = [r.describe() for r in results if not r.category_ok]
    assert len(wrong) <= 0.02 * len(results), "\n".join(wrong)


def test_every_stated_retry_hint_is_parsed_and_none_is_made_up(results: list[Result]) -> None:
    wrong = [r.describe() for r in results if not r.hint_ok]
    assert wrong == []


def test_no_error_is_split_into_several_groups(results: list[Result]) -> None:
    assert splits(results) == {}


def test_no_two_errors_share_a_group(results: list[Result]) -> None:
    assert merges(results) == {}
