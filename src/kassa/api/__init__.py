"""The HTTP API: FastAPI app factory, authentication, the error table, routes under /v1."""

from kassa.api.app import create_app

__all__ = ["create_app"]
