"""HTTPS that phones trust: the local CA and the server certificate it signs (``store``,
``leaf``, ``certificates``: these need ``cryptography`` and run in a short-lived child), the
stdlib-only side the running server keeps (``context``), what devices install (``profile``),
and this machine's trust stores (``trust``)."""
