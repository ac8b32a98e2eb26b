"""Where a batch's items are copied when it names an output_prefix (shared/outputs.py has the naming rule)."""

from api.batch_submission import MAX_KEY_BYTES, BatchSubmission
from shared import keys
from shared.errors import InvalidInput
from shared.outputs import OUTPUT_PREFIX_FIELD, output_extension, output_paths


def item_output_keys(tenant: str, submission: BatchSubmission) -> dict[str, str]:
    """Each item path's full output key (every item's, failed ones too: the manifest's hook looks for it);
    empty without an output_prefix. InvalidInput naming `output_prefix` if a key would pass S3's limit."""
    prefix = submission.output_prefix
    if not prefix:
        return {}
    paths = [item.path for item in submission.items]
    if len(set(paths)) != len(paths):
        twice = next(path for path in paths if paths.count(path) > 1)
        raise InvalidInput(
            f"two items share the path {twice[:100]!r}: each output needs its own", field=OUTPUT_PREFIX_FIELD
        )
    named = output_paths(paths, output_extension(submission.params.output_format))
    found = {path: keys.output_object_key(tenant, prefix, name) for path, name in named.items()}
    longest = max(found.values(), key=lambda key: len(key.encode()))
    if len(longest.encode()) > MAX_KEY_BYTES:
        raise InvalidInput(
            f"output key {longest[:100]!r}... would pass S3's {MAX_KEY_BYTES} bytes; use a shorter prefix",
            field=OUTPUT_PREFIX_FIELD,
        )
    return found
