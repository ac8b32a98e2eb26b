"""Celery tasks: thin wrappers that hand a job id to the runner."""

import logging

from shared import keys
from worker.bootstrap import get_runtime
from worker.celery_app import app
from worker.runner import describe_failure

log = logging.getLogger(__name__)


@app.task(name=keys.STYLIZE_TASK)
def stylize(job_id: str) -> None:
    """Run one style-transfer job; any failure marks that job failed and leaves the worker running."""
    runner = get_runtime().runner
    try:
        runner.run_job(job_id)
    except Exception as err:  # the one catch-all: a job's failure must never take the worker down
        log.exception("job %s failed", job_id)
        runner.mark_failed(job_id, describe_failure(err))
