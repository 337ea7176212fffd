"""Fixtures of the worker tests."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest
from fastapi import FastAPI

from api.resources import Resources
from tests.support.webhooks import webhook_client


@pytest.fixture
async def live_hooks(
    app: FastAPI, resources: Resources, committed_data: None
) -> AsyncIterator[httpx.AsyncClient]:
    """A client whose writes commit, with webhooks allowed to the loopback test receiver."""
    async with webhook_client(app, resources, webhook_allow_insecure=True) as client:
        yield client
