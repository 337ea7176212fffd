"""The Locust suite that checks p95 < 200 ms at 1000 concurrent users (see loadtests/README.md)."""
