"""Checks of the deploy files: Dockerfile, docker-compose.yml, k8s/ (base, overlays, monitoring).

The manifests are rendered by a real `kubectl kustomize` and each object validated against the
Kubernetes schemas (offline); every command, probe and healthcheck is resolved against the code;
the alert rules go through `promtool`; the dashboard's and rules' metrics are compared with what
the running app's /metrics serves. The image and the compose stack themselves are built and run
by `make compose-smoke` (deploy/smoke.py). Helpers: manifests.py, dockerfile.py, compose_file.py,
commands.py, environment.py, monitoring.py.
"""
