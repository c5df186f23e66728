"""``python -m tests.corpus``: print the classifier's report on the corpus."""

from tests.corpus import ALL_SHAPES
from tests.corpus.report import classify_all, report

print(report(classify_all(ALL_SHAPES)))
