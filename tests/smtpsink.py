"""A real SMTP server (aiosmtpd) on loopback that keeps what it receives."""

from email import message_from_bytes
from email.message import Message
from typing import Any

import psycopg
from aiosmtpd.controller import Controller

from tests.conftest import free_port


class _Collect:
    def __init__(self) -> None:
        self.messages: list[Message] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.messages.append(message_from_bytes(envelope.content))
        return "250 OK"


class SmtpSink:
    def __init__(self, port: int | None = None) -> None:
        self.handler = _Collect()
        # aiosmtpd cannot bind port 0 (its self-check connects to the port it was given).
        self.port = port or free_port()
        self.controller = Controller(self.handler, hostname="127.0.0.1", port=self.port)

    @property
    def messages(self) -> list[Message]:
        return self.handler.messages

    def __enter__(self) -> "SmtpSink":
        self.controller.start()
        return self

    def __exit__(self, *_: object) -> None:
        self.controller.stop()


def text_of(message: Message) -> str:
    for part in message.walk():
        if part.get_content_type() == "text/plain":
            payload = part.get_payload(decode=True)
            assert isinstance(payload, bytes)
            return payload.decode()
    raise AssertionError("no text part")


def outbox_statuses(conn: psycopg.Connection) -> dict[str, int]:
    rows = conn.execute("SELECT status, count(*) FROM alert_outbox GROUP BY status").fetchall()
    return {status: count for status, count in rows}
