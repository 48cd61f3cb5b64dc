"""Everything a request handler may need, built once per process at start-up."""

from __future__ import annotations

from dataclasses import dataclass

import asyncpg
from aiohttp import web

from knowledgebase.service import KnowledgeBase
from nlu.types import Engine
from services.config import Settings
from services.conversation.service import ConversationService
from services.core.clock import Clock
from services.core.unit_directory import UnitDirectory
from services.desk import Desk
from services.outbound.twilio_sender import Notifier
from services.outbound.wechat_client import WeChatApi


@dataclass
class Context:
    settings: Settings
    clock: Clock
    pool: asyncpg.Pool
    units: UnitDirectory
    nlu: Engine
    kb: KnowledgeBase
    conversation: ConversationService
    # outbound messages to citizens and units (services/notify.py, services/wechat_api.py)
    notify: Notifier | None = None
    wechat: WeChatApi | None = None
    # dispatch, time limits, supervision lights and the scheduler (services/desk.py)
    desk: Desk | None = None


CONTEXT = web.AppKey("context", Context)


def context_of(request: web.Request) -> Context:
    return request.app[CONTEXT]
