"""Mails to addresses nobody has verified carry nothing the registrant wrote."""

from __future__ import annotations

import pytest

from worker.mail.render import render_mail

HOSTILE_NAME = "Your bank: call +1 555 0100 now"


@pytest.mark.parametrize(
    ("template", "context"),
    [
        ("verify_email", {"link": "http://testserver/verify?token=t", "valid_hours": 24}),
        ("confirm_email_change", {"link": "http://testserver/confirm?token=t", "valid_hours": 24}),
        (
            "reset_password",
            {"reset_endpoint": "http://testserver/reset", "token": "t", "valid_minutes": 60},
        ),
    ],
)
def test_link_mails_leave_out_the_registrants_name(
    template: str, context: dict[str, object]
) -> None:
    mail = render_mail(template, full_name=HOSTILE_NAME, **context)
    for part in (mail.subject, mail.text, mail.html):
        assert "bank" not in part
    assert mail.text.startswith("Hello,")
