"""End-to-end tests: the web page in a real browser against the real stack."""
