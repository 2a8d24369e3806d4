"""The web UI: FastAPI app factory (`create_app`), auth, server-rendered views and templates."""
