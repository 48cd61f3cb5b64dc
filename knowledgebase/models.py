"""Knowledge-base records at the boundary: what is imported, stored and answered."""

from __future__ import annotations

from datetime import date
from typing import Literal

from pydantic import BaseModel, Field, field_validator, model_validator


class FaqEntry(BaseModel):
    id: str = Field(min_length=1, max_length=64)
    question: str = Field(min_length=2, max_length=500)
    alternatives: list[str] = Field(default_factory=list)
    answer: str = Field(min_length=2, max_length=5000)
    unit: str | None = None
    tags: list[str] = Field(default_factory=list)
    valid_from: date | None = None
    valid_until: date | None = None
    status: Literal["draft", "published", "retired"] = "published"

    @field_validator("question", "answer")
    @classmethod
    def _strip(cls, value: str) -> str:
        value = value.strip()
        if not value:
            raise ValueError("must not be blank")
        return value

    @field_validator("alternatives", "tags")
    @classmethod
    def _clean_list(cls, value: list[str]) -> list[str]:
        return [v.strip() for v in value if v and v.strip()]

    @model_validator(mode="after")
    def _dates(self) -> FaqEntry:
        if self.valid_from and self.valid_until and self.valid_until < self.valid_from:
            raise ValueError("valid_until is before valid_from")
        return self

    def phrasings(self) -> list[str]:
        return [self.question, *self.alternatives]

    def answerable_on(self, day: date) -> bool:
        """Only published entries inside their validity answer citizens."""
        if self.status != "published":
            return False
        if self.valid_from and day < self.valid_from:
            return False
        return not (self.valid_until and day > self.valid_until)


class Provider(BaseModel):
    id: str = Field(min_length=1, max_length=64)
    name: str = Field(min_length=2, max_length=200)
    category: str = Field(min_length=2, max_length=40)
    phone: str = Field(min_length=5, max_length=40)
    area: str | None = None
    hours: str | None = None
    keywords: list[str] = Field(default_factory=list)
