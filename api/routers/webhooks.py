"""Webhooks: endpoints that receive a signed POST for every task or category change.

Scopes for personal access tokens (#15): the GET routes need `webhooks:read`, every other
route `webhooks:write`. Routes that make this server resolve or call the user's host (create,
change, test, redeliver) count against a per-user limit of their own.
"""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Depends, Path, Query
from fastapi import status as http
from starlette.responses import Response

from api.boundary import UnitOfWorkRoute
from api.deps import (
    Principal,
    ResourcesDep,
    UnitOfWorkDep,
    WebhooksReader,
    WebhooksWriter,
)
from api.http_cache import NO_STORE, documented_problems, json_response
from api.schemas.webhooks import (
    DeliveryOut,
    DeliveryPage,
    WebhookCreate,
    WebhookList,
    WebhookOut,
    WebhookUpdate,
    WebhookWithSecret,
)
from common.errors import RateLimited
from common.webhooks.schemas import delivery_out, webhook_out, with_secret
from common.webhooks.service import SECRET_GRACE, Deliveries, WebhookService
from common.webhooks.targets import Resolver, system_resolver

router = APIRouter(prefix="/api/v1/webhooks", tags=["webhooks"], route_class=UnitOfWorkRoute)

NOT_YOURS = "Another user's webhook answers 404, exactly like a missing one."
MAX_PAGE_SIZE = 100


async def get_resolver() -> Resolver:
    """How host names are resolved (a test gives a table of its own)."""
    return system_resolver


async def get_webhook_service(
    uow: UnitOfWorkDep,
    resources: ResourcesDep,
    resolver: Annotated[Resolver, Depends(get_resolver)],
) -> WebhookService:
    return WebhookService(uow, resources.settings, resolver)


async def outbound_allowance(principal: WebhooksWriter, resources: ResourcesDep) -> Principal:
    """The caller, within their allowance of requests that reach out to their host."""
    settings = resources.settings
    limit = await resources.limiter.hit(
        "webhooks",
        str(principal.user_id),
        limit=settings.webhook_rate_limit,
        window_seconds=settings.webhook_rate_window_seconds,
    )
    if not limit.allowed:
        raise RateLimited(
            "Too many webhook changes, tests or redeliveries; slow down", headers=limit.headers
        )
    return principal


WebhookServiceDep = Annotated[WebhookService, Depends(get_webhook_service)]
OutboundPrincipal = Annotated[Principal, Depends(outbound_allowance)]
WebhookId = Annotated[uuid.UUID, Path(description="The webhook's id (a malformed one is a 400)")]
DeliveryId = Annotated[uuid.UUID, Path(description="The delivery's id (a malformed one is a 400)")]


def _delivery_response(found: Deliveries) -> Response:
    ((delivery, attempts),) = found
    body = delivery_out(delivery, attempts).model_dump_json().encode()
    return json_response(body, status_code=http.HTTP_202_ACCEPTED)


@router.post(
    "",
    status_code=http.HTTP_201_CREATED,
    response_model=WebhookWithSecret,
    summary="Create a webhook",
    description="The URL must be https and resolve only to public addresses (400 naming why "
    "not). The answer carries the signing `secret`, shown this once. Every matching change is "
    "then POSTed with the Standard Webhooks headers (`webhook-id`, `webhook-timestamp`, "
    "`webhook-signature`). 403 `email-not-verified` until the account's address is "
    "confirmed; 409 `webhook-limit-reached` past the per-account limit; 429 past the limit of "
    "webhook changes.",
    responses=documented_problems(400, 401, 403, 409, 429),
)
async def create_webhook(
    body: WebhookCreate, principal: OutboundPrincipal, webhooks: WebhookServiceDep
) -> Response:
    endpoint = await webhooks.create(
        principal.user_id, url=body.url, events=body.events, description=body.description
    )
    return json_response(
        with_secret(endpoint).model_dump_json().encode(),
        status_code=http.HTTP_201_CREATED,
        headers={"Location": f"{router.prefix}/{endpoint.id}", **NO_STORE},
    )


@router.get(
    "",
    response_model=WebhookList,
    summary="List your webhooks",
    description="Oldest first. Secrets are never shown again.",
    responses=documented_problems(401),
)
async def list_webhooks(principal: WebhooksReader, webhooks: WebhookServiceDep) -> Response:
    found = [webhook_out(endpoint) for endpoint in await webhooks.list(principal.user_id)]
    return json_response(WebhookList(items=found, total=len(found)).model_dump_json().encode())


@router.get(
    "/{webhook_id}",
    response_model=WebhookOut,
    summary="Read a webhook",
    description=NOT_YOURS,
    responses=documented_problems(400, 401, 404),
)
async def get_webhook(
    webhook_id: WebhookId, principal: WebhooksReader, webhooks: WebhookServiceDep
) -> Response:
    endpoint = await webhooks.get(principal.user_id, webhook_id)
    return json_response(webhook_out(endpoint).model_dump_json().encode())


@router.patch(
    "/{webhook_id}",
    response_model=WebhookOut,
    summary="Change a webhook",
    description="A new URL is checked as at creation. `enabled: false` stops deliveries; "
    "`enabled: true` resumes them (also after the endpoint was disabled for failing). " + NOT_YOURS,
    responses=documented_problems(400, 401, 404, 429),
)
async def update_webhook(
    webhook_id: WebhookId,
    body: WebhookUpdate,
    principal: OutboundPrincipal,
    webhooks: WebhookServiceDep,
) -> Response:
    endpoint = await webhooks.update(principal.user_id, webhook_id, body.changes())
    return json_response(webhook_out(endpoint).model_dump_json().encode())


@router.delete(
    "/{webhook_id}",
    status_code=http.HTTP_204_NO_CONTENT,
    summary="Delete a webhook",
    description="With its deliveries log; what was still pending is not sent. " + NOT_YOURS,
    responses=documented_problems(400, 401, 404),
)
async def delete_webhook(
    webhook_id: WebhookId, principal: WebhooksWriter, webhooks: WebhookServiceDep
) -> Response:
    await webhooks.delete(principal.user_id, webhook_id)
    return Response(status_code=http.HTTP_204_NO_CONTENT)


@router.post(
    "/{webhook_id}/rotate-secret",
    response_model=WebhookWithSecret,
    summary="Rotate a webhook's signing secret",
    description="Answers the new secret, shown this once. For "
    f"{SECRET_GRACE.total_seconds() / 3600:g} hours the previous secret signs every delivery "
    "too (two signatures in `webhook-signature`), so the receiver can switch without missing "
    "one. " + NOT_YOURS,
    responses=documented_problems(400, 401, 404),
)
async def rotate_secret(
    webhook_id: WebhookId, principal: WebhooksWriter, webhooks: WebhookServiceDep
) -> Response:
    endpoint = await webhooks.rotate_secret(principal.user_id, webhook_id)
    return json_response(with_secret(endpoint).model_dump_json().encode(), headers=NO_STORE)


@router.post(
    "/{webhook_id}/test",
    status_code=http.HTTP_202_ACCEPTED,
    response_model=DeliveryOut,
    summary="Send a test event",
    description="Queues a `webhook.test` event for this endpoint and answers its delivery; "
    "follow it in the deliveries log. 409 `webhook-disabled` for a disabled endpoint. " + NOT_YOURS,
    responses=documented_problems(400, 401, 404, 409, 429),
)
async def test_webhook(
    webhook_id: WebhookId, principal: OutboundPrincipal, webhooks: WebhookServiceDep
) -> Response:
    return _delivery_response(await webhooks.send_test(principal.user_id, webhook_id))


@router.get(
    "/{webhook_id}/deliveries",
    response_model=DeliveryPage,
    summary="The deliveries log",
    description="Newest first: each event sent or owed to the endpoint, its body, and every "
    "attempt (status code, duration, error, the start of a failed answer, when the next "
    "attempt is due). Kept for 14 days. " + NOT_YOURS,
    responses=documented_problems(400, 401, 404),
)
async def list_deliveries(
    webhook_id: WebhookId,
    principal: WebhooksReader,
    webhooks: WebhookServiceDep,
    page: Annotated[int, Query(ge=1, le=10_000, description="1-based page number")] = 1,
    limit: Annotated[int, Query(ge=1, le=MAX_PAGE_SIZE, description="Page size")] = 20,
) -> Response:
    found = await webhooks.deliveries(principal.user_id, webhook_id, page=page, limit=limit)
    items = [delivery_out(delivery, attempts) for delivery, attempts in found]
    body = DeliveryPage(items=items, page=page, limit=limit).model_dump_json().encode()
    return json_response(body)


@router.post(
    "/{webhook_id}/deliveries/{delivery_id}/redeliver",
    status_code=http.HTTP_202_ACCEPTED,
    response_model=DeliveryOut,
    summary="Deliver an event again",
    description="Sends the same body under the same `webhook-id` (receivers that already "
    "processed it can tell), with a new day of retries. 409 `webhook-disabled` for a disabled "
    "endpoint. " + NOT_YOURS,
    responses=documented_problems(400, 401, 404, 409, 429),
)
async def redeliver(
    webhook_id: WebhookId,
    delivery_id: DeliveryId,
    principal: OutboundPrincipal,
    webhooks: WebhookServiceDep,
) -> Response:
    return _delivery_response(await webhooks.redeliver(principal.user_id, webhook_id, delivery_id))
