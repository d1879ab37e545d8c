"""Asset definitions, one module per domain."""
