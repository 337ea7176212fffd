from __future__ import annotations

from common.config import Settings
from worker.devmail import describe
from worker.mail.render import render_mail
from worker.mail.sender import build_message


def test_devmail_prints_headers_and_the_decoded_text_part() -> None:
    settings = Settings()
    mail = render_mail(
        "verify_email", full_name="Ada", link="http://x/verify?token=abc=def", valid_hours=24
    )
    raw = build_message(settings, "ada@example.com", mail, "key-1").as_bytes()
    printed = describe(raw)
    assert "To: ada@example.com" in printed
    assert "Subject: Confirm your email address for Taskpipe" in printed
    assert "http://x/verify?token=abc=def" in printed  # decoded, not quoted-printable
    assert "<p>" not in printed
