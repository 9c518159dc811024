"""The web layer: every HTTP route and WebSocket of the service, one module per web concept, and
the composition root (services.py). Nothing outside this package (and cluster/, Serve's ingress)
imports FastAPI or starlette."""
