"""Errors specific to webhooks."""

from __future__ import annotations

from common.errors import AppError, Conflict, NotFound


class WebhookNotFound(NotFound):
    def __init__(self) -> None:
        super().__init__("Webhook not found")


class DeliveryNotFound(NotFound):
    def __init__(self) -> None:
        super().__init__("Delivery not found")


class WebhookLimitReached(Conflict):
    code = "webhook-limit-reached"
    title = "Too many webhooks"

    def __init__(self, limit: int) -> None:
        super().__init__(f"An account has at most {limit} webhooks; delete one first")


class WebhookDisabled(Conflict):
    code = "webhook-disabled"
    title = "The webhook is disabled"

    def __init__(self) -> None:
        super().__init__("The webhook is disabled; enable it first (PATCH with `enabled: true`)")


class AddressNotVerified(AppError):
    status = 403
    code = "email-not-verified"
    title = "Email address not verified"

    def __init__(self) -> None:
        super().__init__(
            "Confirm your email address first: webhooks make this server call out, "
            "so they are for verified accounts only"
        )
