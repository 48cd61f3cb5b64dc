"""The Rasa engine: the same ParseResult as the built-in engine, from two running Rasa 3.6
servers (see nlu/rasa_export.py for why two): the intent model and the routing model.

Only classification comes from Rasa. Entities, emergencies, short fixed replies and the
territorial unit come from the project's own code, exactly as in the built-in engine, so both
engines differ only in their classifiers.
"""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import urllib3

from nlu import emergency as emergency_rules
from nlu.builtin import CLASSIFY_CHARS, REQUEST, input_problem, unit_guesses, unreadable
from nlu.entities import EntityExtractor
from nlu.gazetteer import Gazetteer
from nlu.rasa_export import FAQ_INTENT, REQUEST_INTENT, clean, unit_from_intent
from nlu.rules import short_reply_intent
from nlu.types import CONVERSATION_INTENTS, REQUEST_TYPES, ParseResult

# DIET's softmax confidences are not calibrated like the built-in engine's, so the abstain
# rule is a fixed one: the lead unit is named when the model puts more weight on it than on
# all other units together. Override with HOTLINE_UNIT_THRESHOLD.
DEFAULT_UNIT_THRESHOLD = 0.5


class RasaError(RuntimeError):
    """A Rasa server could not answer: not running, too slow, or an error."""


@dataclass
class FaqMatch:
    """The ResponseSelector's answer: a knowledge-base FAQ id and its confidence."""

    id: str
    confidence: float
    answer: str | None


@dataclass
class RasaParse:
    result: ParseResult
    faq: FaqMatch | None
    intent_ranking: list[tuple[str, float]] = field(default_factory=list)
    unit_ranking: list[tuple[str, float]] = field(default_factory=list)


class RasaClient:
    """`/model/parse` of one Rasa server, over a small keep-alive connection pool."""

    def __init__(self, url: str, *, timeout: float = 10.0) -> None:
        self.url = url.rstrip("/")
        self._pool = urllib3.PoolManager(
            num_pools=1,
            maxsize=8,
            # one retry of the connection only: a parse is not repeated after it was sent
            retries=urllib3.Retry(total=1, connect=1, read=0, redirect=0, status=0),
            timeout=urllib3.Timeout(connect=2.0, read=timeout),
        )

    def _request(self, method: str, path: str, body: dict | None = None) -> Any:
        try:
            response = self._pool.request(
                method,
                self.url + path,
                body=json.dumps(body, ensure_ascii=False).encode() if body is not None else None,
                headers={"Content-Type": "application/json"} if body is not None else None,
            )
        except urllib3.exceptions.HTTPError as exc:
            reason = getattr(exc, "reason", None) or exc
            raise RasaError(
                f"the Rasa server at {self.url} does not answer ({reason}); "
                "start it with `hotline nlu rasa-serve`"
            ) from exc
        if response.status != 200:
            raise RasaError(
                f"the Rasa server at {self.url} answered {path} with HTTP {response.status}: "
                f"{response.data[:300].decode(errors='replace')}"
            )
        try:
            return json.loads(response.data)
        except ValueError as exc:
            raise RasaError(f"the Rasa server at {self.url} sent no JSON for {path}") from exc

    def parse(self, text: str) -> dict:
        return self._request("POST", "/model/parse", {"text": text})

    def status(self) -> dict:
        return self._request("GET", "/status")

    def close(self) -> None:
        self._pool.clear()


class RasaEngine:
    name = "rasa"

    def __init__(
        self,
        intent_url: str,
        routing_url: str,
        *,
        unit_threshold: float = DEFAULT_UNIT_THRESHOLD,
        timeout: float = 10.0,
        gazetteer: Gazetteer | None = None,
    ) -> None:
        self.intents = RasaClient(intent_url, timeout=timeout)
        self.routing = RasaClient(routing_url, timeout=timeout)
        self.unit_threshold = unit_threshold
        self.extractor = EntityExtractor(gazetteer or Gazetteer.load())
        # the two servers are asked at the same time
        self._routing_pool = ThreadPoolExecutor(max_workers=4, thread_name_prefix="rasa-routing")

    @classmethod
    def from_settings(cls, settings: Any) -> RasaEngine:
        """From services.config.Settings (not imported: nlu does not depend on services)."""
        threshold = getattr(settings, "unit_confidence_threshold", None)
        return cls(
            settings.rasa_url,
            settings.rasa_routing_url,
            unit_threshold=DEFAULT_UNIT_THRESHOLD if threshold is None else threshold,
            timeout=settings.rasa_timeout,
        )

    def check(self) -> dict[str, str]:
        """The model file each server has loaded; RasaError when one is not ready."""
        return {
            "intents": str(self.intents.status().get("model_file")),
            "routing": str(self.routing.status().get("model_file")),
        }

    def close(self) -> None:
        self._routing_pool.shutdown(wait=False)
        self.intents.close()
        self.routing.close()

    def parse(self, text: str) -> ParseResult:
        return self.parse_full(text).result

    def parse_full(self, text: str) -> RasaParse:
        text = text if isinstance(text, str) else ""
        stripped = text.strip()
        problem = input_problem(stripped)
        if problem is not None:
            return RasaParse(unreadable(text, problem, self.name), None)
        entities = self.extractor.extract(stripped[: 4 * CLASSIFY_CHARS])
        head = stripped[:CLASSIFY_CHARS]
        # a message that is only a place name has nothing left once places are masked
        query = clean(head, self.extractor.gazetteer) or clean(head, _NO_PLACES)
        if not query:
            return RasaParse(unreadable(text, "no_words", self.name), None)
        routing_future = self._routing_pool.submit(self.routing.parse, query)
        intent_data = self.intents.parse(query)
        routing_data = routing_future.result()

        intent_ranking = _ranking(intent_data)
        unit_ranking = _ranking(routing_data)
        # DIET's `request` (and `faq`: a question the knowledge base answers is a
        # consultation) is the one request class; the request ResponseSelector names the type.
        probs: dict[str, float] = {}
        for name, confidence in intent_ranking:
            key = REQUEST if name in _REQUEST_CLASSES else name
            if key in _CLASSES:
                probs[key] = probs.get(key, 0.0) + confidence
        if not probs:
            raise RasaError(
                f"the model at {self.intents.url} knows none of the hotline's intents "
                f"(got {[n for n, _ in intent_ranking[:5]]}); is it the exported intent model?"
            )
        rt = _request_types(intent_data, intent_ranking)
        total = sum(rt.values())
        request_type = max(rt, key=rt.__getitem__)
        rt_conf = rt[request_type] / total if total > 0 else 0.0

        def named(label: str) -> str:
            return request_type if label == REQUEST else label

        best = max(probs, key=probs.__getitem__)
        intent, intent_conf = named(best), probs[best]
        short = short_reply_intent(stripped)
        if short is not None:
            intent, intent_conf = short, 1.0

        ranked_units = [
            (unit, confidence)
            for name, confidence in unit_ranking
            if (unit := unit_from_intent(name)) is not None
        ]
        units = unit_guesses(ranked_units, entities)
        emergency = emergency_rules.detect(
            stripped, probs.get("emergency", 0.0), intent == "emergency"
        )
        if emergency is not None:
            intent = "emergency"
        elif intent == "emergency":  # the emergency detector said no: the next best intent
            rest = {k: v for k, v in probs.items() if k != "emergency"} or {"out_of_scope": 0.0}
            best = max(rest, key=rest.__getitem__)
            intent, intent_conf = named(best), rest[best]
        result = ParseResult(
            text=text,
            intent=intent,
            intent_confidence=float(intent_conf),
            request_type=request_type,
            request_type_confidence=float(rt_conf),
            units=units,
            unit_confident=bool(units) and units[0].probability >= self.unit_threshold,
            entities=entities,
            emergency=emergency,
            problem="too_long" if len(stripped) > CLASSIFY_CHARS else None,
            engine=self.name,
        )
        return RasaParse(result, _faq(intent_data), intent_ranking, unit_ranking)


_NO_PLACES = Gazetteer("", [], {})
# What DIET's ranking may hold for a request: `request` and `faq`; the six request types are
# how models exported before EXPORT_FORMAT 2 named them (still read, see _request_types).
_REQUEST_CLASSES = frozenset({REQUEST_INTENT, FAQ_INTENT, *REQUEST_TYPES})
_CLASSES = frozenset({REQUEST, *CONVERSATION_INTENTS})


def _request_types(data: dict, intent_ranking: list[tuple[str, float]]) -> dict[str, float]:
    """Each request type's confidence: the request ResponseSelector's ranking of
    `request/<type>`, or, from a model exported with the six types as intents, their DIET
    confidences (a FAQ question counting as a consultation)."""
    selector = (data.get("response_selector") or {}).get(REQUEST_INTENT) or {}
    scores = {t: 0.0 for t in REQUEST_TYPES}
    found = False
    for item in selector.get("ranking") or []:
        key = str(item.get("intent_response_key") or "")
        name = key.split("/", 1)[1] if key.startswith(REQUEST_INTENT + "/") else None
        if name in scores:
            scores[name] += float(item.get("confidence") or 0.0)
            found = True
    if found:
        return scores
    for name, confidence in intent_ranking:
        key = "consult" if name == FAQ_INTENT else name
        if key in scores:
            scores[key] += confidence
    return scores


def _ranking(data: dict) -> list[tuple[str, float]]:
    ranking = data.get("intent_ranking") or []
    if not ranking and (data.get("intent") or {}).get("name"):
        ranking = [data["intent"]]
    return [
        (str(item.get("name")), float(item.get("confidence") or 0.0))
        for item in ranking
        if item.get("name")
    ]


def _faq(data: dict) -> FaqMatch | None:
    selector = (data.get("response_selector") or {}).get(FAQ_INTENT) or (
        data.get("response_selector") or {}
    ).get("default")
    response = (selector or {}).get("response") or {}
    key = response.get("intent_response_key") or ""
    if not key.startswith(FAQ_INTENT + "/"):
        return None
    answers = response.get("responses") or []
    return FaqMatch(
        id=key.split("/", 1)[1],
        confidence=float(response.get("confidence") or 0.0),
        answer=(answers[0] or {}).get("text") if answers else None,
    )
