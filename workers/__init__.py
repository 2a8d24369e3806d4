"""Background work: the Celery app and its thin tasks (the composition root)."""
