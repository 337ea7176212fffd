"""What each mail says: a link mail and a reminder digest, from what the services assembled."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from urllib.parse import urlencode

from common.auth.links import LinkMail
from common.config import Settings
from common.models import ActionTokenPurpose
from common.reminders.service import Digest
from worker.mail.render import RenderedMail, render_mail


@dataclass(frozen=True, slots=True)
class Outgoing:
    idempotency_key: str
    """One mail per key, however often its job runs (`worker.mail.delivery`)."""
    to: str
    mail: RenderedMail
    kind: str
    """How the mail is counted in the job statistics."""


def link_mail(settings: Settings, link: LinkMail) -> Outgoing:
    if link.purpose is ActionTokenPurpose.VERIFY_EMAIL:
        url = f"{settings.public_url}/api/v1/auth/verify-email?{urlencode({'token': link.token})}"
        mail = render_mail(
            "verify_email",
            full_name=link.full_name,
            link=url,
            valid_hours=settings.email_token_ttl // 3600,
        )
    else:
        mail = render_mail(
            "reset_password",
            full_name=link.full_name,
            reset_endpoint=f"{settings.public_url}/api/v1/auth/reset-password",
            token=link.token,
            valid_minutes=settings.password_reset_token_ttl // 60,
        )
    return Outgoing(f"action:{link.token_id}", link.address, mail, link.purpose.value)


def digest_mail(digest: Digest) -> Outgoing:
    mail = render_mail(
        "due_reminder",
        full_name=digest.full_name,
        time_zone=digest.time_zone,
        minutes_before=digest.minutes_before,
        tasks=[asdict(task) for task in digest.tasks],
    )
    return Outgoing(f"reminder:{digest.batch_id}", digest.address, mail, "due_reminder")
