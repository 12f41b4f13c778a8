"""The HTTP API and WebSocket push of ``pivotal serve`` (FastAPI), thin over ``pivotal.services``. See docs/api.md."""
