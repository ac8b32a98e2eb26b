"""tqdm progress bars fed by job and batch snapshots."""

import sys
from typing import TextIO

from tqdm import tqdm

from client.models import Batch, Job

BATCH_FORMAT = "{desc}: {percentage:3.0f}%|{bar}| {n_fmt}/{total_fmt} items [{elapsed}{postfix}]"
JOB_FORMAT = "{desc}: {percentage:3.0f}%|{bar}| {n_fmt}/{total_fmt} steps [{elapsed}{postfix}]"


class _Bar:
    """One tqdm bar, created on the first snapshot (the total is not known before).

    On a terminal it redraws every poll; into a log (not a TTY) it writes a line only when the count moves.
    """

    def __init__(self, *, desc: str, bar_format: str, file: TextIO | None = None) -> None:
        self._desc, self._format, self._file = desc, bar_format, file or sys.stderr
        self._bar: tqdm | None = None
        self._live = self._file.isatty()

    def _show(self, done: int, total: int, postfix: str) -> None:
        if self._bar is None:
            self._bar = tqdm(
                total=total,
                initial=done,
                desc=self._desc,
                bar_format=self._format,
                postfix=postfix,
                file=self._file,
                dynamic_ncols=True,
            )
            return
        moved = done != self._bar.n
        self._bar.total, self._bar.n = total, done
        self._bar.set_postfix_str(postfix, refresh=False)
        if self._live or moved:
            self._bar.refresh()

    def close(self) -> None:
        """Leave the bar's last state on screen."""
        if self._bar is not None:
            self._bar.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


class BatchBar(_Bar):
    """Items done over items total, with steps and the server's ETA."""

    def __init__(self, *, file: TextIO | None = None) -> None:
        super().__init__(desc="stylizing", bar_format=BATCH_FORMAT, file=file)

    def update(self, batch: Batch) -> None:
        """Show one batch snapshot."""
        postfix = f"steps {batch.steps_done}/{batch.steps_total}, eta {format_eta(batch.eta_s)}"
        if batch.counts.failed:
            postfix += f", {batch.counts.failed} failed"
        self._show(batch.counts.done, batch.items_total, postfix)


class JobBar(_Bar):
    """Steps done over steps total, with the job's status."""

    def __init__(self, *, file: TextIO | None = None) -> None:
        super().__init__(desc="stylizing", bar_format=JOB_FORMAT, file=file)

    def update(self, job: Job) -> None:
        """Show one job snapshot."""
        self._show(job.step, max(job.total_steps, 1), job.status)


def format_eta(seconds: float | None) -> str:
    """42s, 3m05s, 1h02m; '?' while the server has no estimate."""
    if seconds is None:
        return "?"
    whole = max(0, round(seconds))
    if whole < 60:
        return f"{whole}s"
    if whole < 3600:
        return f"{whole // 60}m{whole % 60:02d}s"
    return f"{whole // 3600}h{whole % 3600 // 60:02d}m"
