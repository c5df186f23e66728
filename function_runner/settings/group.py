"""What every settings group shares: its fields described by their docstrings, and the constrained types they
use.

A field is declared once: its name, its type (one of the constrained types below, or one of its own), its
default, and under it a docstring that becomes its description (what ``docs/hooks/reference.py`` prints and
the JSON schema shows), the docstring's lines joined into one paragraph.
"""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field

#: A duration or an interval in seconds, more than 0.
Seconds = Annotated[float, Field(gt=0)]
#: A duration in seconds where 0 means something of its own (at once, or off).
SecondsOrZero = Annotated[float, Field(ge=0)]
#: A count, a size or a limit: at least 1.
AtLeastOne = Annotated[int, Field(ge=1)]


class SettingsGroup(BaseModel):
    """A group of settings whose fields are described by the docstring under each."""

    model_config = ConfigDict(use_attribute_docstrings=True)

    @classmethod
    def __pydantic_init_subclass__(cls, **kwargs: Any) -> None:
        """Join the lines of each wrapped docstring into one paragraph, as a description is read."""
        super().__pydantic_init_subclass__(**kwargs)
        wrapped = [field for field in cls.model_fields.values() if field.description and "\n" in field.description]
        for field in wrapped:
            field.description = " ".join((field.description or "").split())
        if wrapped:  # the JSON schema was built from the descriptions as they stood
            cls.model_rebuild(force=True)
