"""Everything a request handler may need, built once per process at start-up
(services/app.build_context, in dependency order)."""

from __future__ import annotations

from dataclasses import dataclass

import asyncpg
from aiohttp import web

from knowledgebase.service import KnowledgeBase
from nlu.types import Engine
from services.agents.actions import AgentActions
from services.agents.hub import AgentHub
from services.agents.suggest import OrderIndexer
from services.config import Settings
from services.conversation.service import ConversationService
from services.core.clock import Clock
from services.core.unit_directory import UnitDirectory
from services.desk import Desk
from services.jobs.scheduler import Handler
from services.outbound.outbox import Outbox
from services.revisits.service import RevisitService
from services.storage.replica import Reader


@dataclass
class Context:
    settings: Settings
    clock: Clock
    pool: asyncpg.Pool
    units: UnitDirectory
    nlu: Engine
    kb: KnowledgeBase
    conversation: ConversationService
    # every message to citizens and units, on any channel (services/outbound/outbox.py)
    outbox: Outbox | None = None
    # dispatch, time limits and supervision lights (services/desk.py)
    desk: Desk | None = None
    revisits: RevisitService | None = None
    # live pushes to agents and web citizens across processes (services/agents/hub.py)
    hub: AgentHub | None = None
    # what agents do with conversations (services/agents/actions.py)
    agents: AgentActions | None = None
    # resolved orders embedded for the agents' similar-case search (None: no sentence model)
    indexer: OrderIndexer | None = None
    # figures, the public page, exports and search: the replica when it is current enough
    # (services/storage/replica.py); None: they read `pool`
    reader: Reader | None = None

    def job_handlers(self) -> dict[str, Handler]:
        """Every kind of scheduler job this process can run."""
        handlers: dict[str, Handler] = {}
        for part in (self.desk, self.outbox, self.revisits):
            if part is not None:
                handlers.update(part.handlers())
        return handlers


CONTEXT = web.AppKey("context", Context)


def context_of(request: web.Request) -> Context:
    # config_dict: a sub-application's handlers (channels/open311.py) see the main app's too
    return request.config_dict[CONTEXT]
