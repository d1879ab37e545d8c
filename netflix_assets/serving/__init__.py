"""The recommendation service: the latest released models behind a small authenticated HTTP API."""
