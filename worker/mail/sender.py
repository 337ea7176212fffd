"""Send a rendered mail over SMTP with aiosmtplib."""

from __future__ import annotations

from email.message import EmailMessage
from email.utils import make_msgid

import aiosmtplib

from common.config import Settings
from worker.mail.render import RenderedMail

SMTP_ERRORS: tuple[type[Exception], ...] = (aiosmtplib.SMTPException, OSError, TimeoutError)


def build_message(
    settings: Settings,
    to: str,
    mail: RenderedMail,
    idempotency_key: str,
    *,
    message_id: str | None = None,
) -> EmailMessage:
    """`message_id`: the one recorded with the intent, so a resend carries the same id."""
    message = EmailMessage()
    message["From"] = settings.mail_from
    message["To"] = to
    message["Subject"] = mail.subject
    message["Message-ID"] = message_id or make_msgid(domain="taskpipe.local")
    # Lets a mail catcher or a downstream relay spot a duplicate delivery of the same job.
    message["X-Taskpipe-Idempotency-Key"] = idempotency_key
    message.set_content(mail.text)
    message.add_alternative(mail.html, subtype="html")
    return message


async def send_mail(settings: Settings, message: EmailMessage) -> None:
    await aiosmtplib.send(
        message,
        hostname=settings.smtp_host,
        port=settings.smtp_port,
        username=settings.smtp_user,
        password=settings.smtp_password.get_secret_value() if settings.smtp_password else None,
        start_tls=settings.smtp_starttls,
        timeout=settings.smtp_timeout_seconds,
    )
