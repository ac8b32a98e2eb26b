"""Following one event stream (a job's or a batch's) with blocking reads, on a Redis connection of its own.

A blocking XREAD holds its connection for as long as it waits, so a follower must not borrow one from the
pool that request handlers share, and its read timeout must exceed the longest wait.
"""

import redis

from shared.redis_boundary import translates_redis_errors

Entry = tuple[str, dict[str, str]]  # a stream id and the entry's fields


@translates_redis_errors
class StreamReader:
    """Reads one stream's entries after a given id; `close` frees its connection."""

    def __init__(self, client: redis.Redis, stream: str) -> None:
        self._client = client
        self._stream = stream

    def read(self, after: str, *, count: int, block_ms: int | None = None) -> list[Entry]:
        """Up to ``count`` entries after ``after``; with ``block_ms``, waits that long for the first one."""
        found = self._client.xread({self._stream: after}, count=count, block=block_ms)
        return list(found[0][1]) if found else []

    def close(self) -> None:
        """Close the reader's own connection."""
        self._client.close()


def open_reader(base: redis.Redis, stream: str, *, timeout_s: float) -> StreamReader:
    """A reader of ``stream`` on a new connection to ``base``'s server, read timeout ``timeout_s``."""
    pool = base.connection_pool
    kwargs = {**pool.connection_kwargs, "socket_timeout": timeout_s}
    own = redis.ConnectionPool(connection_class=pool.connection_class, max_connections=1, **kwargs)
    return StreamReader(redis.Redis(connection_pool=own), stream)
