"""Runnable example apps: ``uvicorn examples.starlette_app:app`` or ``uvicorn examples.fastapi_app:app``."""
