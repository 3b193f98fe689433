"""uvicorn's server, which says when it listens (``leadflow serve``'s banner)."""

from __future__ import annotations

import socket
from collections.abc import Callable

import uvicorn


class ReadyServer(uvicorn.Server):
    """Calls ``ready`` once the app has started and the socket listens."""

    def __init__(self, config: uvicorn.Config, ready: Callable[[], None]) -> None:
        super().__init__(config)
        self.ready = ready

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await super().startup(sockets)
        if self.started:
            self.ready()
