"""Route modules, one per resource; `app.py` mounts them all under /v1."""
