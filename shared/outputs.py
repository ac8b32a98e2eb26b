"""Results where the pipeline reads them: a batch's `output_prefix`, and where each item's output goes.

One naming rule serves the bucket's mirrored tree, the results zip and the batch JSON's `result.path` (the
CLI's `client.sdk.result_paths` and `client.mirror.output_paths` follow the same rule): the input's relative
path with the output format's extension; when two inputs would land on one name (`a.jpg` and `a.png` both
giving `a.png`), the ones not already named so keep their full name (`a.jpg.png`).
"""

import re
from collections import Counter
from collections.abc import Iterable
from pathlib import PurePosixPath

from shared import keys
from shared.errors import InvalidInput
from shared.images import OUTPUT_FORMATS

OUTPUT_PREFIX_FIELD = "output_prefix"
# Characters of one prefix segment: what every S3-compatible server, shell and build tool takes unquoted.
_SEGMENT = re.compile(r"[A-Za-z0-9_][A-Za-z0-9._-]*")
# Characters of a prefix: room for a dated build path, and ample room left for the tree below it within S3's
# 1024-byte keys (the submission checks every full key too).
MAX_PREFIX_CHARS = 256


def parse_output_prefix(raw: object) -> str:
    """A relative prefix inside the tenant's root, ending with '/' (added when missing); '' when absent.

    Raises InvalidInput naming `output_prefix` for anything else: not a string, absolute, a '.' or '..' or
    empty segment, characters outside [A-Za-z0-9._-], too long, or a first segment the service keeps for its
    own objects (inputs/, jobs/, ...).
    """
    if raw is None or raw == "":
        return ""
    if not isinstance(raw, str):
        raise _refused("output_prefix must be a string such as 'builds/2026-12-02/'")
    if len(raw) > MAX_PREFIX_CHARS:
        raise _refused(f"output_prefix is longer than {MAX_PREFIX_CHARS} characters")
    segments = raw.removesuffix("/").split("/")
    if not all(_SEGMENT.fullmatch(segment) for segment in segments):
        raise _refused(
            f"output_prefix {raw[:100]!r} must be relative segments of letters, digits, '.', '_' and '-', "
            "separated by '/', with no empty, '.' or '..' segment"
        )
    if segments[0] in keys.RESERVED_SEGMENTS:
        reserved = ", ".join(f"{name}/" for name in sorted(keys.RESERVED_SEGMENTS))
        raise _refused(
            f"output_prefix may not start with {segments[0]!r}/: {reserved} hold the service's own"
        )
    return "/".join(segments) + "/"


def _refused(message: str) -> InvalidInput:
    return InvalidInput(message, field=OUTPUT_PREFIX_FIELD)


def output_extension(output_format: str) -> str:
    """The file extension, with its dot, of a params `output_format` (png, jpeg, webp)."""
    return "." + OUTPUT_FORMATS[output_format][1]


def _with_extension(path: str, extension: str) -> str:
    relative = PurePosixPath(path)
    return str(relative.with_suffix(extension)) if relative.name else path + extension


def output_paths(paths: Iterable[str], extension: str) -> dict[str, str]:
    """Each input path's output path (``extension`` with its dot), clashes counted over every input given."""
    wanted = {path: _with_extension(path, extension) for path in paths}
    clashes = Counter(wanted.values())
    return {
        path: name if clashes[name] == 1 or name == path else path + extension
        for path, name in wanted.items()
    }
