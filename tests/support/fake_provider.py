"""A fake AI provider on loopback: a real HTTP server answering with a scripted status, headers and
JSON body, called with httpx like the providers' SDKs do."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx


class FakeProvider:
    """A provider on loopback answering with a scripted status, headers and body; counts its calls."""

    def __init__(self, status: int, body: Any, headers: dict[str, str] | None = None) -> None:
        self.status, self.body, self.headers = status, body, headers or {}
        self.calls = 0
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                fake.calls += 1
                payload = json.dumps(fake.body).encode()
                self.send_response(fake.status)
                self.send_header("content-type", "application/json")
                for name, value in fake.headers.items():
                    self.send_header(name, value)
                self.send_header("content-length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.server.server_port}/v1/chat"

    def ask(self, prompt: str) -> str:
        response = httpx.post(self.url, json={"prompt": prompt}, timeout=5)
        response.raise_for_status()
        return str(response.json()["answer"])

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
