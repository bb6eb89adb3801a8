"""Everything that talks to OpenAI: the HTTP client and its error mapping, the Realtime engine,
and the registry of the calls this server has open (each one costs money until hung up)."""
