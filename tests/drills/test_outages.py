"""Redis killed and PostgreSQL connections terminated under a bounded client loop, against a
real API server process and a real worker. Counted: answers by status, acknowledged writes
missing, tasks created twice, mails missing or doubled."""

from __future__ import annotations

import asyncio
import os
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx

from tests.drills.harness import (
    ApiServer,
    Ledger,
    PrivateRedis,
    client_loop,
    mails_by_address,
    register_user,
    report,
    verify_writes,
    wait_for_mails,
)
from tests.support.postgres import terminate_backends
from tests.support.smtp import SMTPServer
from tests.support.worker import WorkerProcess

CLIENTS = 8
REDELIVER_AFTER = timedelta(seconds=10)


def _env(redis: PrivateRedis, smtp: SMTPServer) -> dict[str, str]:
    return {
        "TASKPIPE_REDIS_URL": redis.url,
        "TASKPIPE_SMTP_PORT": str(smtp.port),
        "TASKPIPE_OUTBOX_REDELIVER_SECONDS": str(int(REDELIVER_AFTER.total_seconds())),
    }


async def _run_loop(api: ApiServer, ledger: Ledger) -> tuple[asyncio.Event, list[Any]]:
    stop = asyncio.Event()
    clients = [asyncio.create_task(client_loop(api.url, ledger, stop)) for _ in range(CLIENTS)]
    return stop, clients


async def test_redis_killed_under_load(
    committed_data: None, private_smtp: SMTPServer, relay: Any, tmp_path: Path
) -> None:
    redis = PrivateRedis()
    redis.start()
    env = _env(redis, private_smtp)
    api = ApiServer(env, tmp_path / "api.log")
    worker = WorkerProcess(env, tmp_path / "worker.log", pool="prefork", concurrency=2)
    api.start()
    worker.start()
    relay(redis.url, REDELIVER_AFTER)
    ledger = Ledger()
    try:
        stop, clients = await _run_loop(api, ledger)
        await asyncio.sleep(5)
        redis.kill()  # cache, security store and broker at once; every queued job is lost
        down_at = time.monotonic()
        await asyncio.sleep(15)
        redis.start()  # empty: no persistence
        back_at = time.monotonic()
        async with httpx.AsyncClient(base_url=api.url) as http:
            while (await http.get("/ready")).json()["checks"]["redis"] != "ok":
                await asyncio.sleep(0.1)
        redis_seen_after = time.monotonic() - back_at
        await asyncio.sleep(5)
        stop.set()
        await asyncio.gather(*clients)
        mails_after = await wait_for_mails(private_smtp.catcher, ledger.registered, 60)
        writes = await verify_writes(os.environ["TASKPIPE_DATABASE_URL"], ledger)
        mails = mails_by_address(list(private_smtp.catcher.messages), ledger.registered)
    finally:
        worker.stop()
        api.stop()
        redis.kill()
    figures = {
        "requests": ledger.requests,
        "failed_by_status": ledger.failed_by_status(),
        "outage_s": round(back_at - down_at, 1),
        "redis_ok_in_ready_after_s": round(redis_seen_after, 2),
        "mails": len(mails),
        "mails_lost": sum(1 for n in mails.values() if n == 0),
        "mails_doubled": sum(n - 1 for n in mails.values() if n > 1),
        "all_mails_in_s_after_the_loop": round(mails_after, 1),
        **writes,
    }
    report("redis_killed", **figures)
    assert ledger.failed_by_status() == {}, figures
    assert writes == {"lost_creates": 0, "lost_updates": 0, "doubled_creates": 0}, figures
    assert figures["mails_lost"] == 0, figures
    assert figures["mails_doubled"] == 0, figures


async def test_postgresql_connections_terminated_under_load_with_the_worker_idle_and_busy(
    committed_data: None, private_smtp: SMTPServer, relay: Any, tmp_path: Path
) -> None:
    redis = PrivateRedis()
    redis.start()
    env = _env(redis, private_smtp)
    api = ApiServer(env, tmp_path / "api.log")
    worker = WorkerProcess(env, tmp_path / "worker.log", pool="prefork", concurrency=2)
    api.start()
    worker.start()
    relay(redis.url, REDELIVER_AFTER)
    ledger = Ledger()
    terminated = []
    try:
        stop, clients = await _run_loop(api, ledger)
        await asyncio.sleep(4)
        terminated.append(await terminate_backends())  # the worker idle between mails
        await asyncio.sleep(4)
        private_smtp.catcher.delay_seconds = 0.2  # a burst of mails keeps the worker busy
        async with httpx.AsyncClient(base_url=api.url, timeout=10) as http:
            await asyncio.gather(*(register_user(http, ledger) for _ in range(20)))
        await asyncio.sleep(1)
        terminated.append(await terminate_backends())  # mid-burst
        await asyncio.sleep(2)
        terminated.append(await terminate_backends())
        await asyncio.sleep(4)
        stop.set()
        await asyncio.gather(*clients)
        private_smtp.catcher.delay_seconds = 0
        mails_after = await wait_for_mails(private_smtp.catcher, ledger.registered, 60)
        writes = await verify_writes(os.environ["TASKPIPE_DATABASE_URL"], ledger)
        mails = mails_by_address(list(private_smtp.catcher.messages), ledger.registered)
    finally:
        worker.stop()
        api.stop()
        redis.kill()
    failed = ledger.failed_by_status()
    figures = {
        "requests": ledger.requests,
        "terminations": len(terminated),
        "backends_terminated": sum(terminated),
        "failed_by_status": failed,
        "503_without_retry_after": ledger.retry_after_missing,
        "mails": len(mails),
        "mails_lost": sum(1 for n in mails.values() if n == 0),
        "mails_doubled": sum(n - 1 for n in mails.values() if n > 1),
        "all_mails_in_s_after_the_loop": round(mails_after, 1),
        **writes,
    }
    report("postgresql_terminated", **figures)
    assert set(failed) <= {"503"}, figures
    assert ledger.retry_after_missing == 0, figures
    assert writes == {"lost_creates": 0, "lost_updates": 0, "doubled_creates": 0}, figures
    assert figures["mails_lost"] == 0, figures
    assert figures["mails_doubled"] == 0, figures
