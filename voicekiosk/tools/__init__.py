"""The agent's tools, declared in the config file and run by this server: webhooks, MCP servers,
the knowledge folder and the built-ins (``spec`` reads them, ``runner`` runs them)."""
