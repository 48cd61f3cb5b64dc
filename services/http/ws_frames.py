"""JSON over a WebSocket, as the citizen's chat socket and the agents' socket both speak it.

Each text frame is one JSON object; the answer (if any) is one JSON object back. A frame that
is not a JSON object gets {"error": "bad_json"}, a binary frame {"error": "bad_frame"}; the
socket stays open either way, so one bad frame from a browser does not end a conversation.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import WSMsgType, web

Frame = dict[str, Any]
FrameHandler = Callable[[Frame], Awaitable[Frame | None]]


def dumps(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False)


def parse_frame(data: str) -> Frame | None:
    """The frame's JSON object, or None when it is not one."""
    try:
        body = json.loads(data)
    except ValueError:
        return None
    return body if isinstance(body, dict) else None


async def serve_json_frames(ws: web.WebSocketResponse, handle: FrameHandler) -> None:
    """Answer each frame with what `handle` returns (nothing for None) until the socket closes."""
    async for msg in ws:
        if msg.type == WSMsgType.TEXT:
            body = parse_frame(msg.data)
            if body is None:
                reply: Frame | None = {"error": "bad_json", "reason": "send one JSON object"}
            else:
                reply = await handle(body)
        elif msg.type == WSMsgType.BINARY:
            reply = {"error": "bad_frame", "reason": "send JSON text frames"}
        else:
            continue
        if reply is not None:
            await ws.send_str(dumps(reply))
