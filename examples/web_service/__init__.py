"""A complete web service: Hypercorn + Starlette, a store, a worker, probes, systemd and Kubernetes."""
