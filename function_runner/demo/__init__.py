"""``function-runner demo``: every route end to end on the embedded default."""
