"""Flower as `python -m worker.flower` runs it: every page, /metrics included, behind basic auth.

Flower itself leaves /metrics (worker and task names, counts, queue figures) open even when
basic auth is on; only /healthcheck, which says "OK", stays open here.
"""

from __future__ import annotations

import httpx
import pytest

from tests.support.flower import FLOWER_PASSWORD as PASSWORD
from tests.support.flower import FLOWER_USER as USER


@pytest.mark.parametrize("auth", [None, (USER, "wrong-password"), ("someone", PASSWORD)])
def test_flower_metrics_need_the_credentials(flower: str, auth: tuple[str, str] | None) -> None:
    response = httpx.get(f"{flower}/metrics", auth=auth)
    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"] == 'Basic realm="flower"'
    assert "flower_" not in response.text


def test_flower_metrics_answer_with_the_credentials(flower: str) -> None:
    response = httpx.get(f"{flower}/metrics", auth=(USER, PASSWORD))
    assert response.status_code == 200
    assert "flower_" in response.text


def test_flower_pages_need_them_and_the_health_check_does_not(flower: str) -> None:
    assert httpx.get(f"{flower}/workers").status_code == 401
    assert httpx.get(f"{flower}/healthcheck").text == "OK"
