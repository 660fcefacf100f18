# The C fast path (_fastserve.c), built on Linux by setup.py.
from typing import Any

def serve(sock_fd: int, data: bytes, links: dict[bytes, Any], date: str, client_json: str, pid: int,
          started: float, lines: list[str], max_requests: int) -> int | tuple[int, bytes, int, int, int, int, Any, str]: ...
