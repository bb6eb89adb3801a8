"""The app's tools, made from the config: the ``ToolRunner`` and the HTTP client its webhooks share."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import httpx

from voicekiosk.tools.runner import ToolRunner
from voicekiosk.tools.spec import ToolsConfig
from voicekiosk.tools.webhook import WebhookTool


@dataclass
class Toolbox:
    """The runner (None: no tools this server runs) and what it owns; ``aclose`` at cleanup."""

    runner: ToolRunner | None
    client: httpx.AsyncClient | None

    async def aclose(self) -> None:
        if self.client is not None:
            await self.client.aclose()


def open_toolbox(config: ToolsConfig, environ: Mapping[str, str] | None = None) -> Toolbox:
    """The webhooks of ``config`` as a runner (the only tools run here so far).

    Raises:
      ConfigError: a secret's environment variable is not set.
    """
    if not config.webhooks:
        return Toolbox(None, None)
    # Each call is bounded by its tool's timeout in the runner; this only caps what is left over.
    client = httpx.AsyncClient(trust_env=False, timeout=httpx.Timeout(60.0), follow_redirects=False)
    # A failure here leaves nothing to close: the client has not connected anywhere yet.
    tools = [WebhookTool(spec, client, environ) for spec in config.webhooks]
    return Toolbox(ToolRunner(tools), client)
