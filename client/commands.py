"""The client subcommands of `styleforge`: submit, batch, wait, status, cancel (and styles, in
client/style_commands.py).

The key of an API in required mode comes from STYLEFORGE_API_KEY (the SDK's Client reads it).

Exit codes: 0 everything succeeded; 1 a job or some batch items failed or were canceled; 2 the request
was refused, the API was unreachable or a local file was unusable; 130 interrupted (the server carries on).
"""

import argparse
import json
import os
import shlex
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from client import mirror, report, style_commands
from client.models import Batch, Job
from client.progress import BatchBar, JobBar
from client.sdk import Client, result_paths
from shared.errors import StyleforgeError

DEFAULT_API_URL = "http://127.0.0.1:8091"  # the local stack of `make up` (deploy/local/env.sh)
EXIT_FAILED = 1  # a job or batch item did not succeed
EXIT_ERROR = 2  # refused request, unreachable API, unusable local file
EXIT_INTERRUPTED = 130  # 128 + SIGINT, as shells report Ctrl-C

Command = Callable[[Client, argparse.Namespace], int]


def register(commands: argparse._SubParsersAction) -> None:
    """Add the client subcommands to the `styleforge` parser."""
    api, params = _api_options(), _param_options()
    submit = commands.add_parser("submit", parents=[api, params], help="stylize one image and download it")
    submit.add_argument("content", type=Path)
    _add_styles(submit)
    submit.add_argument("-o", "--out", type=Path, help="result file (default: <content>-stylized.<format>)")
    submit.set_defaults(run=_runner(submit_command))
    batch = commands.add_parser("batch", parents=[api, params], help="stylize every image under a folder")
    batch.add_argument("folder", type=Path)
    _add_styles(batch)
    batch.add_argument("--out", type=Path, required=True, help="folder to mirror the input tree into")
    batch.add_argument(
        "--force", action="store_true", help="submit every input, even those whose output is up to date"
    )
    batch.add_argument(
        "--output-prefix",
        help="also write each output under this prefix of your tenant's bucket root, with manifest.json "
        "(implies --force: the tree and manifest describe the whole folder)",
    )
    batch.set_defaults(run=_runner(batch_command))
    wait = commands.add_parser("wait", parents=[api], help="follow a batch or job, then download its results")
    wait.add_argument("--out", type=Path, help="batch: folder for the results; job: result file")
    _add_id(wait, wait_command)
    status = commands.add_parser("status", parents=[api], help="print a batch's or job's status")
    _add_id(status, status_command)
    cancel = commands.add_parser("cancel", parents=[api], help="cancel a batch's remaining items, or a job")
    _add_id(cancel, cancel_command)
    style_commands.register(commands, api, _runner)


def submit_command(client: Client, args: argparse.Namespace) -> int:
    """Submit one job, follow it with a bar, write its result."""
    job = client.submit(
        args.content, args.style or (), params_from(args), style_id=args.style_id, cache=args.cache
    )
    print(f"job {job.id} submitted")
    out = args.out or Path(f"{args.content.stem}-stylized")
    with resume_on_interrupt(_resume_hint(args, job.id, out)):
        return finish_job(client, job.id, out, poll_s=args.poll)


def batch_command(client: Client, args: argparse.Namespace) -> int:
    """Upload what changed in a folder since the last run into --out as one batch, follow it with a bar,
    download the results mirroring the tree (client/mirror.py); nothing changed: no request at all."""
    styles = mirror.StyleChoice(files=tuple(args.style or ()), style_id=args.style_id)
    force = args.force or bool(args.output_prefix)
    plan = mirror.plan(args.folder, args.out, styles, params_from(args), force=force)
    print(plan.summary())
    if not plan.changed:
        mirror.save_state(args.out, mirror.State(entries=plan.kept))
        print(f"nothing to submit: every output in {args.out} is up to date")
        return 0
    batch = client.batch(
        args.folder,
        styles.files,
        params_from(args),
        paths=plan.changed,
        style_id=args.style_id,
        output_prefix=args.output_prefix,
        cache=args.cache,
    )
    mirror.save_state(args.out, plan.submitted(batch.id))
    print(f"batch {batch.id} submitted: {batch.items_total} item(s), {len(batch.skipped)} file(s) skipped")
    if batch.raw.get("output_prefix"):
        print(f"outputs also go to {batch.raw['output_prefix']} in the bucket; manifest.json once it ends")
    hint = _resume_hint(args, batch.id, args.out)
    print(f"resume with: {hint}", flush=True)
    with resume_on_interrupt(hint):
        return finish_batch(client, batch.id, args.out, poll_s=args.poll)


def wait_command(client: Client, args: argparse.Namespace) -> int:
    """Follow a batch (or a job) until it is finished, then download what is not downloaded yet."""
    found = client.status(args.id)
    with resume_on_interrupt(_resume_hint(args, args.id, args.out)):
        if isinstance(found, Batch):
            return finish_batch(client, found.id, args.out, poll_s=args.poll)
        return finish_job(client, found.id, args.out, poll_s=args.poll)


def status_command(client: Client, args: argparse.Namespace) -> int:
    """Print a compact status of a batch or a job."""
    print(_describe(client.status(args.id)))
    return 0


def cancel_command(client: Client, args: argparse.Namespace) -> int:
    """Cancel a batch's remaining items (finished ones stay downloadable), or a job."""
    print(_describe(client.cancel(args.id)))
    return 0


def finish_batch(client: Client, batch_id: str, out: Path | None, *, poll_s: float) -> int:
    """Wait with a bar, download into out (when given), print the table; EXIT_FAILED if any item failed."""
    with BatchBar() as bar:
        batch = client.wait_batch(batch_id, on_progress=bar.update, poll_s=poll_s)
    if out is not None:
        _download(client, batch, out)
    print(report.batch_table(batch))
    if batch.skipped:
        print(report.skipped_lines(batch))
    counts = batch.counts
    print(
        f"{counts.succeeded} succeeded, {counts.failed} failed, {counts.canceled} canceled "
        f"({counts.cached} cached, {counts.stylized} stylized)"
    )
    if batch.failed_items:
        print(report.not_succeeded(batch), file=sys.stderr)
        return EXIT_FAILED
    return 0


def _download(client: Client, batch: Batch, out: Path) -> None:
    state = mirror.load_state(out)
    if state.pending is None or state.pending.batch_id != batch.id:  # not a mirror run's batch
        before = sum(1 for path in _expected_files(batch, out) if path.exists())
        written = client.download_batch(batch, out)
        print(f"downloaded {len(written) - before} result(s) to {out} ({before} already there)")
        return
    names = mirror.output_paths(batch, state.outputs_of(state.pending))
    client.download_batch(batch, out, overwrite=True, names=names)
    written = {path: out.joinpath(*relative.parts) for path, relative in names.items()}
    mirror.save_state(out, mirror.record(state, batch, out, written))
    print(f"downloaded {len(written)} result(s) to {out}; recorded in {out / mirror.STATE_FILE}")


def finish_job(client: Client, job_id: str, out: Path | None, *, poll_s: float) -> int:
    """Wait with a bar, write the result to out (its extension added when out has none)."""
    with JobBar() as bar:
        job = client.wait(job_id, on_progress=bar.update, poll_s=poll_s)
    if job.status != "succeeded":
        print(f"job {job.id} {job.status}: {job.error or 'no details'}", file=sys.stderr)
        return EXIT_FAILED
    if out is not None:
        dest = out if out.suffix else out.with_name(out.name + job.result.extension)
        print(f"wrote {client.download(job, dest)}")
    else:
        print(report.job_summary(job))
    return 0


def params_from(args: argparse.Namespace) -> dict[str, Any]:
    """The job params the options ask for; --param values are JSON when they parse as JSON, else text."""
    params: dict[str, Any] = dict(args.param or ())
    named = {"preset": args.preset, "steps": args.steps, "max_dim": args.size}
    params.update({name: value for name, value in named.items() if value is not None})
    return params


@contextmanager
def resume_on_interrupt(hint: str) -> Iterator[None]:
    """On Ctrl-C, say how to pick the work up again (the server carries on), then re-raise."""
    try:
        yield
    except KeyboardInterrupt:
        print(f"\ninterrupted; the work goes on on the server. resume with: {hint}", file=sys.stderr)
        raise


def default_api_url() -> str:
    """STYLEFORGE_API_URL, else the local stack's address."""
    return os.environ.get("STYLEFORGE_API_URL") or DEFAULT_API_URL


def _runner(command: Command) -> Callable[[argparse.Namespace], int]:
    def run(args: argparse.Namespace) -> int:
        try:
            with Client(args.api) as client:
                return command(client, args)
        except KeyboardInterrupt:
            return EXIT_INTERRUPTED
        except (StyleforgeError, OSError, ValueError) as err:
            print(f"styleforge {args.command}: {err}", file=sys.stderr)
            return EXIT_ERROR

    return run


def _describe(found: Job | Batch) -> str:
    if isinstance(found, Job):
        return report.job_summary(found)
    lines = [report.batch_summary(found)]
    if found.failed_items:
        lines.append(report.not_succeeded(found))
    return "\n".join(lines)


def _expected_files(batch: Batch, out: Path) -> list[Path]:
    return [out.joinpath(*relative.parts) for relative in result_paths(batch.items).values()]


def _resume_hint(args: argparse.Namespace, any_id: str, out: Path | None) -> str:
    words = ["styleforge", "wait", any_id]
    if out is not None:
        words += ["--out", str(out)]
    if args.api != default_api_url():
        words += ["--api", args.api]
    return shlex.join(words)


def _add_styles(parser: argparse.ArgumentParser) -> None:
    chosen = parser.add_mutually_exclusive_group(required=True)
    chosen.add_argument("--style", type=Path, action="append", help="a style image; repeat to blend styles")
    chosen.add_argument("--style-id", help="a saved style's id (`styleforge styles create`)")


def _add_id(parser: argparse.ArgumentParser, command: Command) -> None:
    parser.add_argument("id", help="a batch id or a job id")
    parser.set_defaults(run=_runner(command))


def _api_options() -> argparse.ArgumentParser:
    options = argparse.ArgumentParser(add_help=False)
    options.add_argument("--api", default=default_api_url(), help="API base URL (env STYLEFORGE_API_URL)")
    options.add_argument("--poll", type=float, default=1.0, help=argparse.SUPPRESS)
    return options


def _param_options() -> argparse.ArgumentParser:
    options = argparse.ArgumentParser(add_help=False)
    options.add_argument("--preset", help="seed, tutorial or balanced")
    options.add_argument("--steps", type=int, help="Adam steps per level")
    options.add_argument("--size", type=int, help="longest side of the output in pixels (max_dim)")
    options.add_argument(
        "--param", type=_param, action="append", metavar="NAME=VALUE", help="any job param; repeatable"
    )
    options.add_argument(
        "--no-cache",
        dest="cache",
        action="store_false",
        default=None,
        help="compute even what the server's result cache holds, and record nothing there (cache=false)",
    )
    return options


def _param(text: str) -> tuple[str, Any]:
    name, sep, raw = text.partition("=")
    if not sep or not name:
        raise argparse.ArgumentTypeError(f"expected NAME=VALUE, got {text!r}")
    try:
        return name.strip(), json.loads(raw)
    except ValueError:
        return name.strip(), raw
