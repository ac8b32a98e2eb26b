"""The local process harness: real redis-server, moto's S3 server, Celery workers and the API, on loopback and
free ports, for the tests, the benchmarks and local scripts.

Not product code: pyproject's `packages.find` ships only api, worker, shared and client, and none of them
imports this package. `env` holds the stack's environment, `processes` the process wrappers, `stack` the whole
stack as deployed (for benchmarks).
"""
