"""The call record: what each call cost (``prices``, ``tokens``), kept in SQLite (``store``) by the
registry's observer (``book``), summed for people (``reports``) and held to a budget (``budget``)."""
