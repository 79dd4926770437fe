"""``python -m examples.web_service``: run the service until SIGTERM or Ctrl-C."""

from __future__ import annotations

from .app import main

main()
