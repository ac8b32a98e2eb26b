"""The engine's version: part of every job's result-cache key (worker/result_cache.py).

Bump ENGINE_VERSION whenever the engine's numbers change (a loss formula, a default, the optimiser, the
image pipeline, the output encoding): every cached result then misses once and is computed again, so a
re-run never serves pixels an older engine made.
"""

ENGINE_VERSION = "2026.12.02-1"
