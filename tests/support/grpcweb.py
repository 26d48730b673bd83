"""A minimal grpc-web (binary) client over HTTP/1.1, as a browser speaks it.

Used by e2e tests to check the edge's grpc-web translation without a browser:
request frames are ``0x00 | length (4 bytes, big endian) | message``; the
response carries data frames and a trailer frame (flag 0x80) of
``name: value`` lines. Envoy may also put grpc-status in the HTTP headers
(trailers-only replies such as local rate-limit rejections).
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field

import httpx
from google.protobuf.message import Message


@dataclass
class GrpcWebReply:
    http_status: int
    headers: dict[str, str]
    messages: list[bytes] = field(default_factory=list)
    trailers: dict[str, str] = field(default_factory=dict)

    @property
    def grpc_status(self) -> int | None:
        raw = self.trailers.get("grpc-status", self.headers.get("grpc-status"))
        return None if raw is None else int(raw)

    @property
    def grpc_message(self) -> str:
        return self.trailers.get("grpc-message", self.headers.get("grpc-message", ""))


def frame(message: Message) -> bytes:
    payload = message.SerializeToString()
    return b"\x00" + struct.pack(">I", len(payload)) + payload


def parse(body: bytes) -> tuple[list[bytes], dict[str, str]]:
    messages: list[bytes] = []
    trailers: dict[str, str] = {}
    offset = 0
    while offset + 5 <= len(body):
        flag = body[offset]
        (length,) = struct.unpack(">I", body[offset + 1 : offset + 5])
        chunk = body[offset + 5 : offset + 5 + length]
        offset += 5 + length
        if flag & 0x80:
            for line in chunk.decode("latin-1").split("\r\n"):
                if ":" in line:
                    name, value = line.split(":", 1)
                    trailers[name.strip().lower()] = value.strip()
        else:
            messages.append(chunk)
    return messages, trailers


def call(
    client: httpx.Client,
    base_url: str,
    method: str,
    request: Message,
    headers: dict[str, str] | None = None,
    timeout_s: float = 10.0,
) -> GrpcWebReply:
    """POSTs one grpc-web call (unary or server-streaming) and collects the whole reply."""
    all_headers = {
        "content-type": "application/grpc-web+proto",
        "x-grpc-web": "1",
        "accept": "application/grpc-web+proto",
        "origin": "http://localhost:5173",
    }
    all_headers.update(headers or {})
    response = client.post(f"{base_url}{method}", content=frame(request), headers=all_headers, timeout=timeout_s)
    messages, trailers = parse(response.content)
    return GrpcWebReply(
        http_status=response.status_code,
        headers={k.lower(): v for k, v in response.headers.items()},
        messages=messages,
        trailers=trailers,
    )
