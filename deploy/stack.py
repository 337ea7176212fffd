"""The running compose stack as a client sees it: published URLs and the credentials it needs."""

from __future__ import annotations

from dataclasses import dataclass

import httpx

from deploy.engine import ComposeProject
from deploy.mailbox import Mailbox

# Host ports docker-compose.yml publishes (its `${VAR:-default}`s); the smoke picks free ones.
PORT_VARIABLES = ("API_HOST_PORT", "FLOWER_HOST_PORT", "MAILPIT_HOST_PORT")


@dataclass
class Stack:
    project: ComposeProject
    api: httpx.Client
    flower: httpx.Client
    mailbox: Mailbox
    metrics_token: str

    @classmethod
    def connect(cls, project: ComposeProject) -> Stack:
        """Clients for the published ports, with the credentials the resolved compose file gives
        the services (so a developer's `.env` is honoured, not guessed)."""
        env = project.env
        flower_env = project.service_env("flower")
        api_env = project.service_env("api")
        auth = (
            flower_env.get("TASKPIPE_FLOWER_USER", "admin"),
            flower_env.get("TASKPIPE_FLOWER_PASSWORD", "taskpipe"),
        )
        mail_http = httpx.Client(
            base_url=f"http://127.0.0.1:{env['MAILPIT_HOST_PORT']}", timeout=10
        )
        return cls(
            project=project,
            api=httpx.Client(base_url=f"http://127.0.0.1:{env['API_HOST_PORT']}", timeout=10),
            flower=httpx.Client(
                base_url=f"http://127.0.0.1:{env['FLOWER_HOST_PORT']}",
                auth=auth,
                timeout=10,
            ),
            mailbox=Mailbox(mail_http, lambda: project.logs("mailpit")),
            metrics_token=api_env.get("TASKPIPE_METRICS_TOKEN", ""),
        )

    def close(self) -> None:
        self.api.close()
        self.flower.close()
