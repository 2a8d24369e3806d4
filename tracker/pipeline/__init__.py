"""The stages an item goes through, one orchestrator a stage: refresh (and archive imports),
classify, pairing, alerts (fan-out to the outbox and its relay), models (the registry and
retraining), retention. Celery tasks in workers/ call these; they are the flow's only callers of
storage."""
