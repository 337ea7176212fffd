"""The credentials the tests' Flower runs with (`tests/worker/conftest.py` starts it)."""

FLOWER_USER, FLOWER_PASSWORD = "ops", "flower-test-password-1"
