"""The project's training data as two Rasa 3.6 projects.

Rasa classifies one intent per message, while the hotline needs two answers per message (what
kind of request, and which unit). Rather than a combined label (6 request types x 55 units is
too many classes for the examples there are), the export writes two projects:

* `intents/`: the conversation intents and two retrieval intents, each with a
  ResponseSelector of its own. `request/<type>` (request/complain, request/report, ...): DIET
  sees every request as the one intent `request`, and the request ResponseSelector names the
  type, as the built-in engine's one `request` class beside its request-type classifier
  (with the six types as intents of their own, 4,000 request examples against ~40 per
  conversation intent pulled greetings and the like into request types). `faq/<id>`: DIET
  sees one intent `faq`, a question the knowledge base answers (a consultation), and the FAQ
  ResponseSelector names the answer. Rasa trains a retrieval intent from NLU data only when
  domain.yml has a response per sub-intent: `utter_faq/<id>` is the FAQ's answer,
  `utter_request/<type>` the type's Chinese name.
* `routing/`: one intent per duty unit, `unit_<code>`; the ten territorial units (街道/镇/开发区)
  are the one intent `unit_territorial`, and the address says which of them, as in the
  built-in engine.

Like the built-in engine, both see the text with the gazetteer's places masked out (what a
matter is about decides the duty unit; where it is decides the territorial unit), so the
engine masks the text the same way before it asks the servers. The held-out files are never
read here.
"""

from __future__ import annotations

import hashlib
import json
import re
import shutil
from dataclasses import dataclass
from pathlib import Path

import yaml

from nlu.builtin import REQUEST, TERRITORIAL, data_fingerprint
from nlu.features import USERDICT_FILE
from nlu.gazetteer import GAZETTEER_FILE, Gazetteer
from nlu.training_data import Example, dedupe, load_examples, training_files
from nlu.types import REQUEST_TYPE_LABELS, REQUEST_TYPES

FAQ_FILE = Path(__file__).resolve().parent.parent / "knowledgebase" / "data" / "faq.jsonl"
# Bumped whenever the exported config or labels change, so that cached models are retrained.
# 2: the request types are the retrieval intent `request/<type>` with a ResponseSelector
EXPORT_FORMAT = 2
INTENT_PROJECT = "intents"
ROUTING_PROJECT = "routing"
FAQ_INTENT = "faq"
REQUEST_INTENT = REQUEST
UNIT_PREFIX = "unit_"
TERRITORIAL_INTENT = UNIT_PREFIX + "territorial"
META_FILE = "hotline.json"
# Training settings, measured on this 2-core machine (README, "Rasa engine"): DIET reaches
# ~100% training accuracy within 5-10 epochs here and more epochs did not raise held-out
# accuracy (intents, no transformer: 10 epochs 90.6%, 50 epochs 86.1%; routing: 20 and 50
# epochs both ~90.6% top-1), while the default 2-layer transformer cost ~4x the time per
# epoch (intent project: ~18 s vs ~4 s) for at most 2 points. So: no transformer, few epochs.
DEFAULT_EPOCHS = {INTENT_PROJECT: 10, ROUTING_PROJECT: 40}
# A fixed seed: the same data trains the same model, so test floors do not flicker.
DIET_SETTINGS = {"number_of_transformer_layers": 0, "random_seed": 7}
# The intent project's DIET weighs each example's loss by how wrong it is (scale_loss): its
# ~4,200 request examples against ~40 per conversation intent made DIET read greetings,
# progress queries and referrals as requests at confidence ~1.0. Measured with the one
# `request` class (held-out conversation intents, engine): 0.717 -> 0.817 (0.842 in the full
# training, docs/figures.md); held-out request types 0.934 -> 0.931, still every held-out
# request read as a request or an emergency. More epochs instead (40) did not help: 0.692.
INTENT_DIET_SETTINGS = {"scale_loss": True}
DEFAULT_FAQ_EPOCHS = 20
# The ResponseSelector's default hidden layers (256, 128 with dropout) and batches (64 to 256
# of ~1,300 questions: a handful of steps per epoch) learnt the 332 answers far too slowly:
# 67% training accuracy after 100 epochs, 8% right on the knowledge base's held-out questions
# (knowledgebase/data/eval_queries.jsonl). Without hidden layers and with small batches:
# 97% after 2 epochs, 61% on those questions after 40.
FAQ_SETTINGS = {
    "batch_size": [16, 32],
    "hidden_layers_sizes": {"text": [], "label": []},
    "random_seed": 7,
}
DEFAULT_REQUEST_TYPE_EPOCHS = 10
# The request-type ResponseSelector: six labels over the ~6,000 request examples. It reaches
# 100 % training accuracy by its third epoch; 30 epochs took 5:49 of the intent model's ~17 min
# training on the shared 2-core machine (CI trains both Rasa models on every run). Its default
# 512-wide input layers over the ~37,000 n-grams would add ~200 MB to the intent model for six
# labels; 128 wide and without hidden layers it is a linear model like the built-in engine's
# request-type classifier.
REQUEST_TYPE_SETTINGS = {
    "hidden_layers_sizes": {"text": [], "label": []},
    "dense_dimension": {"text": 128, "label": 20},
    "concat_dimension": {"text": 128, "label": 20},
    "random_seed": 7,
}
# Rasa reads "[text](entity)" and "[text]{...}" in examples as entity annotations.
_RASA_MARKUP = str.maketrans({"[": "［", "]": "］", "{": "｛", "}": "｝"})
_SPACE = re.compile(r"\s+")


@dataclass(frozen=True)
class ExportReport:
    directory: Path
    fingerprint: str
    intent_examples: int
    faq_examples: int
    routing_examples: int
    routing_intents: int


def source_files() -> list[Path]:
    """Everything an exported project depends on besides this module."""
    return [*training_files(), FAQ_FILE, USERDICT_FILE, GAZETTEER_FILE]


def project_configs(
    epochs: dict[str, int] | None = None,
    faq_epochs: int | None = DEFAULT_FAQ_EPOCHS,
    request_type_epochs: int | None = DEFAULT_REQUEST_TYPE_EPOCHS,
) -> dict[str, dict]:
    epochs = {**DEFAULT_EPOCHS, **(epochs or {})}
    return {
        INTENT_PROJECT: _config(
            epochs[INTENT_PROJECT],
            faq_epochs=faq_epochs,
            request_type_epochs=request_type_epochs,
            diet=INTENT_DIET_SETTINGS,
        ),
        ROUTING_PROJECT: _config(epochs[ROUTING_PROJECT]),
    }


def fingerprint(
    epochs: dict[str, int] | None = None,
    faq_epochs: int | None = DEFAULT_FAQ_EPOCHS,
    request_type_epochs: int | None = DEFAULT_REQUEST_TYPE_EPOCHS,
) -> str:
    """Names a trained pair of models: the data, and the export format and pipelines."""
    configs = project_configs(epochs, faq_epochs, request_type_epochs)
    configs = json.dumps([EXPORT_FORMAT, configs], sort_keys=True)
    return data_fingerprint(source_files()) + "-" + hashlib.sha256(configs.encode()).hexdigest()[:8]


def intent_label(intent: str) -> str:
    """The intent project's label for a training intent: `request/<type>` for a request type
    (the retrieval intent `request`), else the intent itself."""
    return f"{REQUEST_INTENT}/{intent}" if intent in REQUEST_TYPES else intent


def unit_intent(unit: str, territorial: frozenset[str]) -> str:
    return TERRITORIAL_INTENT if unit in territorial else UNIT_PREFIX + unit


def unit_from_intent(intent: str) -> str | None:
    """The unit code (or the built-in engine's territorial class) a routing intent stands for."""
    if intent == TERRITORIAL_INTENT:
        return TERRITORIAL
    if intent.startswith(UNIT_PREFIX):
        return intent[len(UNIT_PREFIX) :]
    return None


def clean(text: str, gazetteer: Gazetteer) -> str:
    """A message as both the export and the engine give it to Rasa."""
    text = gazetteer.mask(text)
    # a leading "/" makes the Rasa server read the message as an intent name ("/greet")
    text = _SPACE.sub(" ", text.translate(_RASA_MARKUP)).strip().lstrip("/").strip()
    return text


def load_faqs(path: Path = FAQ_FILE) -> list[dict]:
    faqs = []
    with path.open(encoding="utf-8") as fh:
        for line in fh:
            if line.strip():
                faqs.append(json.loads(line))
    return faqs


def pipeline(
    epochs: int,
    *,
    faq_epochs: int | None = None,
    request_type_epochs: int | None = None,
    diet: dict | None = None,
) -> list[dict]:
    """The pipeline of a project: `diet` adds to DIET's settings, and a ResponseSelector per
    retrieval intent given epochs."""
    steps: list[dict] = [
        # the project's place and matter dictionary; Rasa loads every file in the folder and
        # copies them into the model
        {"name": "JiebaTokenizer", "dictionary_path": "jieba"},
        {"name": "RegexFeaturizer"},
        {"name": "LexicalSyntacticFeaturizer"},
        {"name": "CountVectorsFeaturizer"},
        # min_df 2: character 1-4-grams seen once are 80% of the vocabulary (141k of 168k) and
        # mostly names; they tripled the model size
        {
            "name": "CountVectorsFeaturizer",
            "analyzer": "char_wb",
            "min_ngram": 1,
            "max_ngram": 4,
            "min_df": 2,
        },
        {
            "name": "DIETClassifier",
            "epochs": epochs,
            **DIET_SETTINGS,
            **(diet or {}),
            "constrain_similarities": True,
            # all intents in the ranking: the engine needs the request types' share and the
            # top-3 units, not only Rasa's ten best
            "ranking_length": 0,
            "entity_recognition": False,  # entities come from the project's own extractor
        },
    ]
    if request_type_epochs is not None:
        steps.append(
            {
                "name": "ResponseSelector",
                "retrieval_intent": REQUEST_INTENT,
                "epochs": request_type_epochs,
                **REQUEST_TYPE_SETTINGS,
                "constrain_similarities": True,
                # all six types: the engine reports the winner's share
                "ranking_length": 0,
            }
        )
    if faq_epochs is not None:
        steps.append(
            {
                "name": "ResponseSelector",
                "retrieval_intent": FAQ_INTENT,
                "epochs": faq_epochs,
                **FAQ_SETTINGS,
                "constrain_similarities": True,
                "ranking_length": 10,
            }
        )
    return steps


def _config(
    epochs: int,
    *,
    faq_epochs: int | None = None,
    request_type_epochs: int | None = None,
    diet: dict | None = None,
) -> dict:
    # No FallbackClassifier: it would put nlu_fallback in place of the ranking's winner, and
    # the engine applies its own abstain rule to the routing confidence.
    return {
        "recipe": "default.v1",
        "language": "zh",
        "pipeline": pipeline(
            epochs, faq_epochs=faq_epochs, request_type_epochs=request_type_epochs, diet=diet
        ),
        "assistant_id": "hotline12345",
    }


def _nlu_yaml(groups: dict[str, list[str]]) -> str:
    lines = ['version: "3.1"', "nlu:"]
    for intent, texts in groups.items():
        lines.append(f"- intent: {intent}")
        lines.append("  examples: |")
        lines.extend(f"    - {t}" for t in texts)
    return "\n".join(lines) + "\n"


def _dump(path: Path, doc: dict) -> None:
    path.write_text(
        yaml.safe_dump(doc, allow_unicode=True, sort_keys=False, width=1000), encoding="utf-8"
    )


def _write_project(
    directory: Path,
    groups: dict[str, list[str]],
    config: dict,
    domain: dict,
    meta: dict,
) -> None:
    if directory.exists():
        shutil.rmtree(directory)
    (directory / "data").mkdir(parents=True)
    (directory / "jieba").mkdir()
    shutil.copyfile(USERDICT_FILE, directory / "jieba" / USERDICT_FILE.name)
    _dump(directory / "config.yml", config)
    _dump(directory / "domain.yml", domain)
    (directory / "data" / "nlu.yml").write_text(_nlu_yaml(groups), encoding="utf-8")
    (directory / META_FILE).write_text(
        json.dumps(meta, ensure_ascii=False, indent=2), encoding="utf-8"
    )


def export(
    directory: Path,
    *,
    examples: list[Example] | None = None,
    faqs: list[dict] | None = None,
    gazetteer: Gazetteer | None = None,
    epochs: dict[str, int] | None = None,
    faq_epochs: int | None = DEFAULT_FAQ_EPOCHS,
    request_type_epochs: int | None = DEFAULT_REQUEST_TYPE_EPOCHS,
) -> ExportReport:
    """Write `directory/intents` and `directory/routing`, two Rasa 3.6 projects (epochs None:
    that ResponseSelector is left out)."""
    configs = project_configs(epochs, faq_epochs, request_type_epochs)
    gazetteer = gazetteer or Gazetteer.load()
    examples = dedupe(examples if examples is not None else load_examples())
    faqs = faqs if faqs is not None else load_faqs()
    territorial = gazetteer.territorial_units
    print_id = fingerprint(epochs, faq_epochs, request_type_epochs)

    # One label per text: the first one wins when masking makes two examples the same, and a
    # FAQ question that is also a routing example stays a request-type example.
    seen: set[str] = set()
    intent_groups: dict[str, list[str]] = {}
    routing_groups: dict[str, list[str]] = {}
    routing_seen: set[str] = set()
    for ex in examples:
        text = clean(ex.text, gazetteer)
        if not text:
            continue
        if text not in seen:
            seen.add(text)
            intent_groups.setdefault(intent_label(ex.intent), []).append(text)
        if ex.unit and text not in routing_seen:
            routing_seen.add(text)
            routing_groups.setdefault(unit_intent(ex.unit, territorial), []).append(text)

    faq_count = 0
    responses: dict[str, list[dict]] = {
        f"utter_{label}": [{"text": REQUEST_TYPE_LABELS[label.split("/", 1)[1]]}]
        for label in intent_groups
        if label.startswith(REQUEST_INTENT + "/")
    }
    request_types = len(responses)
    for faq in faqs:
        key = f"{FAQ_INTENT}/{faq['id']}"
        texts = []
        for question in [faq["question"], *(faq.get("alternatives") or [])]:
            text = clean(str(question), gazetteer)
            if text and text not in seen:
                seen.add(text)
                texts.append(text)
        if not texts:
            continue
        intent_groups[key] = texts
        faq_count += len(texts)
        responses[f"utter_{key}"] = [{"text": faq["answer"]}]

    # a ResponseSelector with nothing to select refuses to train
    present = {FAQ_INTENT: faq_count > 0, REQUEST_INTENT: request_types > 0}
    configs[INTENT_PROJECT]["pipeline"] = [
        step
        for step in configs[INTENT_PROJECT]["pipeline"]
        if present.get(step.get("retrieval_intent"), True)
    ]
    meta = {"format": EXPORT_FORMAT, "fingerprint": print_id, "masked_places": True}
    intent_names = sorted({k.split("/")[0] for k in intent_groups})
    _write_project(
        directory / INTENT_PROJECT,
        intent_groups,
        configs[INTENT_PROJECT],
        {
            "version": "3.1",
            "intents": intent_names,
            "responses": responses,
            "session_config": {
                "session_expiration_time": 60,
                "carry_over_slots_to_new_session": True,
            },
        },
        {**meta, "project": INTENT_PROJECT},
    )
    _write_project(
        directory / ROUTING_PROJECT,
        routing_groups,
        configs[ROUTING_PROJECT],
        {"version": "3.1", "intents": sorted(routing_groups)},
        {**meta, "project": ROUTING_PROJECT},
    )
    return ExportReport(
        directory=directory,
        fingerprint=print_id,
        intent_examples=sum(len(v) for v in intent_groups.values()) - faq_count,
        faq_examples=faq_count,
        routing_examples=sum(len(v) for v in routing_groups.values()),
        routing_intents=len(routing_groups),
    )
