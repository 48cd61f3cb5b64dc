"""What the NLU says about one message: the boundary between `nlu` and everything else."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Protocol

REQUEST_TYPES = ("consult", "complain", "seek_help", "suggest", "report", "praise")
CONVERSATION_INTENTS = (
    "greet",
    "goodbye",
    "human",
    "query_progress",
    "rate",
    "affirm",
    "deny",
    "emergency",
    "referral",
    "out_of_scope",
)
INTENTS = REQUEST_TYPES + CONVERSATION_INTENTS

REQUEST_TYPE_LABELS = {
    "consult": "咨询",
    "complain": "投诉",
    "seek_help": "求助",
    "suggest": "建议",
    "report": "举报",
    "praise": "表扬",
}


@dataclass
class UnitGuess:
    code: str
    probability: float


@dataclass
class Address:
    text: str
    province: str | None = None
    city: str | None = None
    district: str | None = None
    area: str | None = None  # subdistrict, town or zone of the default city
    place: str | None = None  # community, village, road or landmark
    territorial_unit: str | None = None


@dataclass
class Entities:
    phones: list[str] = field(default_factory=list)
    request_numbers: list[str] = field(default_factory=list)
    address: Address | None = None
    times: list[str] = field(default_factory=list)


@dataclass
class Emergency:
    kind: str  # fire, medical, crime, gas, water
    numbers: tuple[str, ...]  # whom to call: 119, 120, 110


@dataclass
class ParseResult:
    text: str
    intent: str
    intent_confidence: float
    request_type: str
    request_type_confidence: float
    units: list[UnitGuess]
    unit_confident: bool
    entities: Entities
    emergency: Emergency | None = None
    # why the text could not be read normally: empty, too_long, no_words
    problem: str | None = None
    engine: str = "builtin"

    @property
    def lead_unit(self) -> str | None:
        return self.units[0].code if self.units and self.unit_confident else None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


class Engine(Protocol):
    """An NLU engine. Engines are interchangeable: the built-in one and Rasa."""

    name: str

    def parse(self, text: str) -> ParseResult: ...
