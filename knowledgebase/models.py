"""Knowledge-base records at the boundary: what is imported, stored and answered."""

from __future__ import annotations

from datetime import date
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

STATUSES = ("draft", "published", "retired")
Status = Literal["draft", "published", "retired"]
# ids travel in URLs and spreadsheets: keep them to a safe alphabet
ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.:-]*$"


class FaqEntry(BaseModel):
    model_config = ConfigDict(extra="forbid")

    id: str = Field(min_length=1, max_length=64, pattern=ID_PATTERN)
    question: str = Field(min_length=2, max_length=500)
    alternatives: list[str] = Field(default_factory=list, max_length=50)
    answer: str = Field(min_length=2, max_length=5000)
    unit: str | None = None
    tags: list[str] = Field(default_factory=list, max_length=30)
    valid_from: date | None = None
    valid_until: date | None = None
    status: Status = "published"

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
        cleaned: list[str] = []
        for v in value:
            v = v.strip() if isinstance(v, str) else v
            if v and v not in cleaned:
                if len(v) > 500:
                    raise ValueError("an item is longer than 500 characters")
                cleaned.append(v)
        return cleaned

    @field_validator("unit")
    @classmethod
    def _blank_unit(cls, value: str | None) -> str | None:
        return value.strip() or None if isinstance(value, str) else value

    @model_validator(mode="after")
    def _dates(self) -> FaqEntry:
        if self.valid_from and self.valid_until and self.valid_until < self.valid_from:
            raise ValueError("valid_until is before valid_from")
        return self

    def phrasings(self) -> list[str]:
        return [self.question, *(a for a in self.alternatives if a != self.question)]

    def answerable_on(self, day: date) -> bool:
        """Only published entries inside their validity answer citizens."""
        if self.status != "published":
            return False
        if self.valid_from and day < self.valid_from:
            return False
        return not (self.valid_until and day > self.valid_until)


class Provider(BaseModel):
    model_config = ConfigDict(extra="forbid")

    id: str = Field(min_length=1, max_length=64, pattern=ID_PATTERN)
    name: str = Field(min_length=2, max_length=200)
    category: str = Field(min_length=2, max_length=40)
    phone: str = Field(min_length=5, max_length=40)
    area: str | None = None
    hours: str | None = None
    keywords: list[str] = Field(default_factory=list, max_length=50)
    active: bool = True

    @field_validator("keywords")
    @classmethod
    def _clean_keywords(cls, value: list[str]) -> list[str]:
        return [v.strip() for v in value if isinstance(v, str) and v.strip()]

    @field_validator("area", "hours")
    @classmethod
    def _blank(cls, value: str | None) -> str | None:
        return value.strip() or None if isinstance(value, str) else value
