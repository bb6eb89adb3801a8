"""HTTPS that phones trust: the local CA and the server certificate it signs (``store``,
``leaf``, ``certificates``: these need ``cryptography`` and run in a short-lived child), the
stdlib-only side the running server keeps (``context``), what devices install (``profile``),
and this machine's trust stores (``trust``)."""

# The files in the data directory (``store.CertStore``), named here so the running server can find
# them without importing ``cryptography``.
CA_CERT, SERVER_CERT = "ca.pem", "server.pem"
