"""The service as the tests run it: the real aiohttp app on a loopback port against a test
database, with the session's trained models from the cache folder, and the one way it stops."""

from __future__ import annotations

import functools
import os
from dataclasses import dataclass
from pathlib import Path

from aiohttp import web

from services.app import build_context, create_app
from services.config import Settings
from services.context import Context
from services.core.clock import FixedClock
from tests.support.loopback import serve_on_loopback

CACHE_DIR = Path(os.environ.get("HOTLINE_TEST_CACHE", Path.home() / ".cache" / "hotline-tests"))


def _nlu_model_dir() -> Path:
    """The session's n-gram model, in a folder named after the model format and the training
    data: branches with other training data (or a checkout after a data change) train their
    own folder instead of retraining one shared folder in place under each other. The
    abstain threshold's precision target is in the name too: it is chosen at training."""
    from nlu.builtin import MODEL_FORMAT, TARGET_PRECISION, data_fingerprint
    from nlu.training_data import training_files

    fingerprint = data_fingerprint(training_files())
    return CACHE_DIR / f"nlu-f{MODEL_FORMAT}-p{TARGET_PRECISION:g}-{fingerprint}"


NLU_MODEL_DIR = _nlu_model_dir()
EMBEDDING_MODEL_DIR = CACHE_DIR / "e5-small"


def settings_for(database_url: str, data_dir: Path) -> Settings:
    """The service's settings for one test: its database and data folder, the cached models."""
    return Settings(
        database_url=database_url,
        data_dir=data_dir,
        nlu_model_dir=NLU_MODEL_DIR,
        embedding_model_dir=EMBEDDING_MODEL_DIR,
    )


@functools.cache
def session_embedder():
    """The e5 model, loaded once per test session (rebuilt into the cache folder the first
    time), with the knowledge base's text cache so every test's demo base is encoded once."""
    from knowledgebase.vectors import CachedEncoder
    from nlu.embeddings import load_embedder

    return CachedEncoder(load_embedder(EMBEDDING_MODEL_DIR))


@dataclass
class Running:
    """A started service: its URL, its Context and the runner serving it."""

    url: str
    ctx: Context
    runner: web.AppRunner

    async def stop(self) -> None:
        """The one teardown of a started service: the app (its sockets and cleanup hooks), then
        the database pool of its Context."""
        await self.runner.cleanup()
        await self.ctx.pool.close()


async def start_service(
    settings: Settings, clock: FixedClock, nlu_engine, embedder=None
) -> Running:
    if embedder is None and settings.use_embeddings:
        embedder = session_embedder()
    ctx = await build_context(settings, clock, nlu=nlu_engine, embedder=embedder)
    runner, url = await serve_on_loopback(create_app(settings, clock, context=ctx))
    return Running(url, ctx, runner)
