"""Real receivers for notifications: an SMTP server (aiosmtpd, with a login) and an HTTP server that record what
reaches them, and the Airflow connections (as AIRFLOW_CONN_* values) that point at them with credentials, so a
test can check the credentials went where they belong and nowhere else."""

from __future__ import annotations

import email
import email.policy
import http.server
import json
import socket
import threading
import warnings
from contextlib import contextmanager
from dataclasses import dataclass, field

SMTP_LOGIN, SMTP_PASSWORD = "mailer", "smtp-pass-7f3a9c"
HOOK_LOGIN, HOOK_PASSWORD = "deployer", "hook-pass-2b81e4"
CREDENTIALS = (SMTP_PASSWORD, HOOK_PASSWORD)


@dataclass
class Mailbox:
    messages: list = field(default_factory=list)  # email.message.EmailMessage

    def texts(self) -> list[tuple[str, str, str]]:
        """(to, subject, html body) of each message received."""
        return [(message["To"], message["Subject"], message.get_body(("html",)).get_content())
                for message in self.messages]


@dataclass
class Hook:
    posts: list = field(default_factory=list)  # (path, headers, body text)

    def payloads(self) -> list[dict]:
        return [json.loads(body) for _, _, body in self.posts]


@contextmanager
def smtp_server():
    """(Mailbox, AIRFLOW_CONN value) of a local SMTP server that accepts only SMTP_LOGIN/SMTP_PASSWORD."""
    from aiosmtpd.controller import Controller
    from aiosmtpd.smtp import AuthResult

    mailbox = Mailbox()

    class Handler:
        async def handle_DATA(self, server, session, envelope):
            mailbox.messages.append(email.message_from_bytes(envelope.content, policy=email.policy.default))
            return "250 OK"

    def authenticate(server, session, envelope, mechanism, auth_data):
        login = (auth_data.login, auth_data.password)
        return AuthResult(success=login == (SMTP_LOGIN.encode(), SMTP_PASSWORD.encode()))

    with socket.socket() as probe:  # the controller checks it is up by connecting to its port: no port 0
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    with warnings.catch_warnings():  # plain-text AUTH, which aiosmtpd warns of, is all a loopback test needs
        warnings.simplefilter("ignore", UserWarning)
        controller = Controller(Handler(), hostname="127.0.0.1", port=port, auth_require_tls=False,
                                auth_required=True, authenticator=authenticate)
        controller.start()
    try:
        connection = {"conn_type": "smtp", "host": "127.0.0.1", "port": port,
                      "login": SMTP_LOGIN, "password": SMTP_PASSWORD,
                      "extra": {"from_email": "imagepipe@example.com", "disable_ssl": True, "disable_tls": True}}
        yield mailbox, json.dumps(connection)
    finally:
        controller.stop()


@contextmanager
def http_server(status: int = 200):
    """(Hook, AIRFLOW_CONN value) of a local HTTP server that records each POST and answers `status`."""
    hook = Hook()

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_POST(self):
            body = self.rfile.read(int(self.headers.get("Content-Length", 0))).decode()
            hook.posts.append((self.path, dict(self.headers), body))
            self.send_response(status)
            self.end_headers()

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        connection = {"conn_type": "http", "host": "127.0.0.1", "port": server.server_port, "schema": "http",
                      "login": HOOK_LOGIN, "password": HOOK_PASSWORD}
        yield hook, json.dumps(connection)
    finally:
        server.shutdown()
        server.server_close()
