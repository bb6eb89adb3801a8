"""How a running server is watched: ``/metrics`` (Prometheus), ``/admin`` (a status page) and what
both read: the recent problems, the certificates' expiry, the seam to the call record's costs."""
