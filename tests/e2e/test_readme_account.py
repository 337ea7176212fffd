"""The README's account section, run as written (bash and curl) against the API server process,
a real worker and a real SMTP server: what a person pastes from the mails is pasted here from
the mails the SMTP server received."""

from __future__ import annotations

import re
import subprocess
import time
from email.message import Message
from pathlib import Path

import httpx
import pytest

from tests.support.accounts import open_archive
from tests.support.api_server import api_server
from tests.support.factories import PASSWORD, unique_email
from tests.support.smtp import MailCatcher, text_part
from tests.support.worker import ROOT, WorkerProcess

pytestmark = pytest.mark.worker

NEW_ADDRESS = "ada@lovelace.example"  # the README's
FIELD = (
    "field() { python3 -c 'import json, sys; print(json.load(sys.stdin)[sys.argv[1]])' \"$1\"; }"
)
MAILED_HOST = "http://testserver"  # the worker's TASKPIPE_PUBLIC_URL in the tests


def account_blocks() -> tuple[str, list[str]]:
    """The `field` helper of First five minutes, and the bash blocks of Your account."""
    text = (ROOT / "README.md").read_text()
    field = re.search(r"^field\(\) \{.*\}$", text, flags=re.MULTILINE)
    assert field is not None
    start = text.index("\n### Your account\n")
    section = text[start : text.index("\n### ", start + 1)]
    blocks = re.findall(r"^```bash\n(.*?)^```", section, flags=re.MULTILINE | re.DOTALL)
    return field.group(0), blocks


def _mail(mailbox: MailCatcher, address: str, subject: str) -> Message:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        found = [m for m in mailbox.to(address) if m["Subject"] == subject]
        if found:
            return found[-1]
        time.sleep(0.1)
    raise AssertionError(f"no mail {subject!r} to {address}")


def _paste(block: str, variable: str, value: str) -> str:
    return re.sub(rf"^{variable}=.*$", f"{variable}='{value}'", block, flags=re.MULTILINE)


def test_the_account_section_of_the_readme_works_as_written(
    committed_data: None, mailbox: MailCatcher, celery_worker: WorkerProcess, tmp_path: Path
) -> None:
    field, blocks = account_blocks()
    sessions, tokens, password, email, follow, export, download, activity, delete, restore = blocks
    with api_server(own_public_url=True) as base, httpx.Client(base_url=base) as client:
        address = unique_email("readme")
        registered = client.post(
            "/api/v1/auth/register",
            json={"email": address, "password": PASSWORD, "full_name": "Ada Lovelace"},
        )
        access = registered.json()["access_token"]
        verification = _mail(mailbox, address, "Confirm your email address for Taskpipe")
        link = next(w for w in text_part(verification).split() if "verify-email?token=" in w)
        assert client.get(link.replace(MAILED_HOST, base)).status_code == 200
        other = client.post(
            "/api/v1/auth/login", json={"email": address, "password": PASSWORD}
        ).json()
        listed = client.get("/api/v1/users/me/sessions", headers=_bearer(access)).json()
        (other_id,) = [s["id"] for s in listed["items"] if not s["current"]]

        shell = subprocess.Popen(
            ["bash", "-euo", "pipefail", "-s"],
            cwd=tmp_path,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )

        def run(*scripts: str) -> None:
            assert shell.stdin is not None
            for script in scripts:
                shell.stdin.write(script + "\necho\n")
            shell.stdin.flush()

        run(
            f"{field}\nAPI={base}/api/v1\nAUTH='Authorization: Bearer {access}'",
            sessions.replace("SESSION_ID", other_id),
            tokens,
            password,
            email,
        )
        confirm = _mail(mailbox, NEW_ADDRESS, "Confirm your new email address for Taskpipe")
        new_link = next(w for w in text_part(confirm).split() if "confirm-email-change?" in w)
        run(_paste(follow, "LINK", new_link.replace(MAILED_HOST, base)), export)
        ready = _mail(mailbox, NEW_ADDRESS, "Your Taskpipe export is ready")
        assert "/archive?token=" in text_part(ready)
        run(download, activity, delete)
        notice = _mail(mailbox, NEW_ADDRESS, "Your Taskpipe account is being deleted")
        token = next(
            line.split(":", 1)[1].strip()
            for line in text_part(notice).splitlines()
            if line.startswith("Token:")
        )
        run(_paste(restore, "RESTORE", token))
        output, _ = shell.communicate(timeout=60)

        assert shell.returncode == 0, output
        assert '"current":true' in output
        assert "urn:taskpipe:problem:insufficient-scope" in output
        assert f'"email":"{NEW_ADDRESS}"' in output
        assert '"kind":"export_requested"' in output
        assert "Your account is restored; log in again" in output
        (archive,) = tmp_path.glob("taskpipe-export-*.zip")
        document, _ = open_archive(archive.read_bytes())
        assert document["profile"]["email"] == NEW_ADDRESS
        assert (
            client.get("/api/v1/users/me", headers=_bearer(other["access_token"])).status_code
            == 401
        )
        back = client.post(
            "/api/v1/auth/login", json={"email": NEW_ADDRESS, "password": "Brand-New-Secret-7"}
        )
        assert back.status_code == 200


def _bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}
