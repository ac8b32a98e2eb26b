"""Stream a zip archive entry by entry, so memory holds one entry at a time, never the whole archive."""

import zipfile
from collections.abc import Callable, Iterable, Iterator


class _Sink:
    """A write-only stream that hands its bytes on; zipfile finds it unseekable and uses data descriptors."""

    def __init__(self) -> None:
        self._parts: list[bytes] = []

    def write(self, data: bytes) -> int:
        self._parts.append(bytes(data))
        return len(data)

    def flush(self) -> None:
        return None

    def take(self) -> bytes:
        data = b"".join(self._parts)
        self._parts.clear()
        return data


def stream_zip(entries: Iterable[tuple[str, Callable[[], bytes]]]) -> Iterator[bytes]:
    """Yield a zip file's bytes; each entry's data is fetched only when its turn comes."""
    sink = _Sink()
    # Stored, not deflated: the entries are PNG/JPEG/WebP, already compressed.
    with zipfile.ZipFile(sink, "w", compression=zipfile.ZIP_STORED) as archive:
        for name, fetch in entries:
            archive.writestr(zipfile.ZipInfo(name, date_time=(2020, 1, 1, 0, 0, 0)), fetch())
            yield sink.take()
    yield sink.take()
