"""The GPU worker: Celery app, thin tasks, the job runner, and the TensorFlow engine."""
