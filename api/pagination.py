"""Page sizes and cursor length the API accepts; the cursor codec itself is
:mod:`error_handling.persistence.cursor` (an invalid cursor is answered 400 ``invalid_cursor``)."""

from __future__ import annotations

#: Default and maximum page sizes.
DEFAULT_LIMIT = 50
MAX_LIMIT = 500
#: The longest cursor accepted (one this API issues is under 100 characters).
MAX_CURSOR_LENGTH = 200
