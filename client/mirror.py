"""The folder mirror of `styleforge batch`: a re-run over the same --out submits only what changed.

`<out>/.styleforge.json` records, for each input path, the SHA-256 of the input, the signature of the styles
and params it was stylized with, and the output written (its path and SHA-256), or the server's reason for
skipping it. A run submits only the inputs whose record does not match: a new or edited input, other styles
or params, or an output that is missing or was edited since. A second run over an unchanged tree therefore
sends no request and runs no job; change one file and exactly one job runs.

The record cannot see a change on the server (a new engine version, other default params): `--force`
submits every input again.
"""

import hashlib
import json
import os
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

from client.models import Batch
from client.sdk import safe_relative

STATE_FILE = ".styleforge.json"
STATE_VERSION = 1


@dataclass(frozen=True)
class Entry:
    """What the mirror knows of one input path."""

    input_sha256: str
    signature: str  # of the styles and params (see `signature`)
    output: str = ""  # the output's path relative to --out; "" for a skipped file
    output_sha256: str = ""
    job_id: str = ""
    skipped: str = ""  # the server's reason when it made no item of the file


@dataclass(frozen=True)
class Pending:
    """A batch a mirror run submitted and has not collected yet (kept in the state file, so `styleforge
    wait ID --out DIR` after an interrupt records its outputs as `batch` would have)."""

    batch_id: str
    signature: str
    inputs: Mapping[str, str]  # each submitted path -> the SHA-256 of the bytes sent


@dataclass(frozen=True)
class State:
    """The state file's contents."""

    entries: Mapping[str, Entry] = field(default_factory=dict)
    pending: Pending | None = None

    def outputs_of(self, pending: Pending) -> list[str]:
        """Every input path that has or will have an output: for naming clashes as a full run would."""
        return sorted({*pending.inputs, *(path for path, entry in self.entries.items() if not entry.skipped)})


@dataclass(frozen=True)
class MirrorPlan:
    """What one run over a folder must submit, and what it leaves alone."""

    signature: str
    digests: Mapping[str, str]  # every input path now -> the SHA-256 of its bytes
    changed: tuple[str, ...]  # to submit
    unchanged: tuple[str, ...]  # up to date: not submitted
    removed: tuple[str, ...] = ()  # recorded before, gone from the folder now (their outputs are kept)
    kept: Mapping[str, Entry] = field(default_factory=dict)  # the recorded entries of inputs still there

    def summary(self) -> str:
        """One line for the user: how many inputs, how many up to date and how many to stylize."""
        counts = f"{len(self.unchanged)} up to date, {len(self.changed)} to submit"
        line = f"{len(self.digests)} input file(s): {counts}"
        if self.removed:
            line += f"; {len(self.removed)} gone from the folder (their outputs kept)"
        return line

    def submitted(self, batch_id: str) -> State:
        """The state to save once the changed inputs are submitted as batch ``batch_id``."""
        inputs = {path: self.digests[path] for path in self.changed}
        return State(entries=self.kept, pending=Pending(batch_id, self.signature, inputs))


def file_sha256(path: Path) -> str:
    """The SHA-256 of a file's bytes, read in chunks."""
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


@dataclass(frozen=True)
class StyleChoice:
    """The styles of a run: style files, or a saved style's id."""

    files: tuple[Path, ...] = ()
    style_id: str | None = None


def signature(styles: StyleChoice, params: Mapping[str, Any]) -> str:
    """What an output depends on besides its input: the styles' bytes (in order) or the saved style's id,
    and the params asked for."""
    described = {
        "styles": [file_sha256(style) for style in styles.files],
        "style_id": styles.style_id,
        "params": dict(params),
    }
    return hashlib.sha256(json.dumps(described, sort_keys=True, default=str).encode()).hexdigest()


def input_files(folder: Path, out: Path) -> list[Path]:
    """Every file under folder, leaving out --out's tree when it lies inside folder."""
    if folder.resolve() == out.resolve():
        raise ValueError(f"--out must not be the input folder itself: {out}")
    out_root = out.resolve()
    return sorted(
        path for path in folder.rglob("*") if path.is_file() and not path.resolve().is_relative_to(out_root)
    )


def plan(
    folder: Path, out: Path, styles: StyleChoice, params: Mapping[str, Any], *, force: bool = False
) -> MirrorPlan:
    """Compare the folder with the record in out: which inputs to submit."""
    if not folder.is_dir():
        raise NotADirectoryError(f"not a folder: {folder}")
    entries = load_state(out).entries
    wanted = signature(styles, params)
    digests = {path.relative_to(folder).as_posix(): file_sha256(path) for path in input_files(folder, out)}
    fresh = {
        path
        for path, digest in digests.items()
        if not force and _up_to_date(entries.get(path), digest, wanted, out)
    }
    return MirrorPlan(
        signature=wanted,
        digests=digests,
        changed=tuple(path for path in digests if path not in fresh),
        unchanged=tuple(path for path in digests if path in fresh),
        removed=tuple(sorted(set(entries) - set(digests))),
        kept={path: entry for path, entry in entries.items() if path in digests},
    )


def _up_to_date(entry: Entry | None, digest: str, wanted: str, out: Path) -> bool:
    if entry is None or entry.input_sha256 != digest or entry.signature != wanted:
        return False
    if entry.skipped:
        return True
    output = out.joinpath(*safe_relative(entry.output).parts)
    return output.is_file() and file_sha256(output) == entry.output_sha256


def output_paths(batch: Batch, inputs: Iterable[str]) -> dict[str, PurePosixPath]:
    """Where each succeeded item's output goes in --out, as `client.sdk.result_paths` names them, but with
    clashes counted over every input of the mirror: a partial re-run names its outputs as a full run did."""
    done = [item for item in batch.items if item.status == "succeeded" and item.result is not None]
    extension = {item.path: item.result.extension for item in done}
    default = next(iter(extension.values()), ".png")
    stems = Counter(safe_relative(path).with_suffix(extension.get(path, default)) for path in inputs)
    named = {}
    for item in done:
        wanted = safe_relative(item.path).with_suffix(item.result.extension)
        if stems[wanted] > 1 and wanted != PurePosixPath(item.path):
            wanted = safe_relative(item.path + item.result.extension)
        named[item.path] = wanted
    return named


def record(state: State, batch: Batch, out: Path, written: Mapping[str, Path]) -> State:
    """The state once a pending batch is collected: an entry for each output written and each file the
    server skipped; an input that failed keeps no fresh entry, so the next run submits it again."""
    pending = state.pending
    entries = dict(state.entries)
    for path, dest in written.items():
        entries[path] = Entry(
            input_sha256=pending.inputs[path],
            signature=pending.signature,
            output=dest.relative_to(out).as_posix(),
            output_sha256=file_sha256(dest),
            job_id=next((item.job_id for item in batch.items if item.path == path), ""),
        )
    for skipped in batch.skipped:
        if skipped.path in pending.inputs:
            entries[skipped.path] = Entry(
                input_sha256=pending.inputs[skipped.path], signature=pending.signature, skipped=skipped.reason
            )
    return State(entries=entries)


def load_state(out: Path) -> State:
    """The state recorded in out (empty when there is no state file, or one of another version)."""
    try:
        data = json.loads((out / STATE_FILE).read_text())
    except FileNotFoundError:
        return State()
    except ValueError as err:
        raise ValueError(f"{out / STATE_FILE} is not valid JSON ({err}); delete it to start over") from err
    if data.get("version") != STATE_VERSION:
        return State()
    entries = {path: Entry(**fields) for path, fields in data.get("entries", {}).items()}
    pending = Pending(**data["pending"]) if data.get("pending") else None
    return State(entries=entries, pending=pending)


def save_state(out: Path, state: State) -> Path:
    """Write the state file atomically (a crash leaves the old one or the new one, never half of one)."""
    out.mkdir(parents=True, exist_ok=True)
    entries = {path: asdict(state.entries[path]) for path in sorted(state.entries)}
    data = {
        "version": STATE_VERSION,
        "entries": entries,
        "pending": asdict(state.pending) if state.pending else None,
    }
    path, temporary = out / STATE_FILE, out / f"{STATE_FILE}.tmp"
    temporary.write_text(json.dumps(data, indent=1) + "\n")
    os.replace(temporary, path)
    return path
