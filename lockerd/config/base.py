"""Base of every config section: strict pydantic models, so a misspelt key is an error."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict

ConfigErrorList = list[str]


class Strict(BaseModel):
    """Base for every section: unknown keys are rejected (a misspelt key must not be ignored)."""

    model_config = ConfigDict(extra="forbid", frozen=True)
