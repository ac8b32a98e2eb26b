"""Celery tasks: thin wrappers that hand a job id to the runner."""

from shared import keys
from worker.bootstrap import fail_without_runtime, get_runtime
from worker.celery_app import app


@app.task(name=keys.STYLIZE_TASK)
def stylize(job_id: str) -> None:
    """Run one style-transfer job; the runner turns any failure into a failed job."""
    try:
        runtime = get_runtime()
    except Exception as err:
        fail_without_runtime(job_id, err)
        raise
    runtime.runner.execute(job_id)
