"""Integrations written on the public API: health endpoint, systemd, ASGI lifespan, state file, lock."""
