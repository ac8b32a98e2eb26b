"""The `styleforge` command line (and, later, the Python SDK)."""
