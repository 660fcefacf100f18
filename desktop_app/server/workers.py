"""Worker processes of the recording server: more cores for one port.

One Python thread serves about 25,000 ranges a second at most, and more threads don't help (the
GIL), so ``RecordingServer(workers=N)`` serves from its own loop thread plus N-1 child processes,
each running the same event loop and handler on the same port. On Linux, with at least N CPUs, each
process listens on a socket of its own and the kernel hands a new connection to the process for the
CPU it came in on (``steered_listeners``); elsewhere all share one listening socket, and a busier
process leaves new connections to a less busy one. A child is started with ``spawn`` (never
``fork``: the parent may be the GUI with Qt's threads), so it works from a PyInstaller bundle too,
whose entry point calls ``multiprocessing.freeze_support()``.

What a child needs comes over at its start: its listening socket, the settings, the link-signing
key (through the pipe, never the command line or the environment), and two small shared-memory
arrays: where every process writes how many connections it holds, so the connection cap counts them
all, and since when its access log cannot be written, so any process's /healthz tells.
Later the parent sends it the public URL when the tunnel's changes, and "stop". A child whose
parent dies sees its pipe close and stops too. Each process appends whole lines to the same access
log (``O_APPEND``), so the log stays one file with one line per request.
"""

from __future__ import annotations

import ctypes
import logging
import multiprocessing as mp
import os
import signal
import socket
import struct
import sys
import threading
import time
from collections.abc import Callable
from multiprocessing.connection import Connection
from typing import Any

log = logging.getLogger("desktop_app.server")

START_TIMEOUT_S = 20.0

# setsockopt option number (asm-generic/socket.h, which x86, ARM and RISC-V use); Python's socket module
# doesn't name it. Where it means something else the call fails and the processes share one socket.
SO_ATTACH_REUSEPORT_CBPF = 51
# A classic BPF program that returns the number of the CPU the connection came in on, modulo the
# number of sockets: ld [cpu]; mod #n; ret a (linux/filter.h: SKF_AD_OFF + SKF_AD_CPU).
_BPF_LD_W_ABS, _BPF_ALU_MOD_K, _BPF_RET_A = 0x20, 0x94, 0x16
_SKF_AD_CPU = (-0x1000 + 36) & 0xFFFFFFFF


def steered_listeners(first: socket.socket, count: int) -> list[socket.socket] | None:
    """``count - 1`` more listening sockets on ``first``'s address, one per child process, with the
    kernel handing each new connection to socket number (the CPU it came in on) mod ``count``.

    A client mostly stays on one CPU: its connections then go to one serving process, which the
    scheduler keeps on that CPU beside it. Spread over every process instead, each process wakes
    clients on both CPUs and both move between CPUs all the time, which made 2 % of the 64 KiB
    ranges wait 1-2 ms on 2 cores (measured: docs/ARCHITECTURE.md). The cost: a client whose
    connections all come in on one CPU is served by one process.

    ``first`` is already listening, bound without ``SO_REUSEPORT``, so a port that anything else
    holds was refused as before; only then does it let these join. Returns None, changing nothing,
    where the OS can't (not Linux, fewer CPUs than processes, an old kernel): the processes then
    share ``first``.
    """
    if not sys.platform.startswith("linux") or (os.cpu_count() or 1) < count or count < 2:
        return None
    address = first.getsockname()
    extra: list[socket.socket] = []
    try:
        first.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        for _ in range(count - 1):
            sock = socket.socket(first.family, socket.SOCK_STREAM)
            extra.append(sock)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
            sock.bind(address)
            sock.listen(1024)
            sock.setblocking(False)
        program = ((_BPF_LD_W_ABS, 0, 0, _SKF_AD_CPU), (_BPF_ALU_MOD_K, 0, 0, count), (_BPF_RET_A, 0, 0, 0))
        code = ctypes.create_string_buffer(b"".join(struct.pack("HBBI", *op) for op in program))
        first.setsockopt(socket.SOL_SOCKET, SO_ATTACH_REUSEPORT_CBPF,
                         struct.pack("HP", len(program), ctypes.addressof(code)))  # struct sock_fprog
    except OSError as exc:
        log.info("Connections can't be steered by CPU here (%s); the serving processes share one socket", exc)
        for sock in extra:
            sock.close()
        first.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 0)  # nothing else may join it
        return None
    return extra


class WorkerProcess:
    """The parent's handle on one child process."""

    def __init__(self, slot: int, process: Any, control: Connection) -> None:
        self.slot = slot
        self.process = process
        self.control = control
        self.pid: int | None = None
        self._lock = threading.Lock()
        self.lost = False

    def send(self, message: tuple[Any, ...]) -> None:
        with self._lock:
            try:
                self.control.send(message)
            except (OSError, ValueError):
                pass  # the child has gone; the parent notices on its next look

    def alive(self) -> bool:
        return bool(self.process.is_alive())

    def stop(self, timeout: float) -> None:
        self.send(("stop",))
        self.process.join(timeout)
        if self.process.is_alive():
            log.warning("Recording server worker %s did not stop in %.0f s; ending it", self.pid, timeout)
            self.process.terminate()
            self.process.join(2)
        try:
            self.control.close()
        except OSError:
            pass


# A child's body: (config, listener, control pipe, counts, lost, slot). It is the server's own
# (``app.serve_in_child``), passed in so that this module does not import the server it serves for.
ChildMain = Callable[[dict[str, Any], socket.socket, Connection, Any, Any, int], None]


def spawn(child_main: ChildMain, config: dict[str, Any], listeners: list[socket.socket], counts: Any,
          lost: Any, balance: bool) -> list[WorkerProcess]:
    """Start one child per listener, numbered from slot 1, each running ``child_main`` with ``config``
    (what it needs to serve exactly as this process does), and wait until each serves (or has failed:
    logged, left out). ``balance``: the children share one socket, and a busier process leaves a new
    connection to a less busy one."""
    ctx = mp.get_context("spawn")
    config = {**config, "balance": balance}
    started: list[WorkerProcess] = []
    for slot, listener in enumerate(listeners, 1):
        parent_end, child_end = ctx.Pipe()
        process = ctx.Process(target=child_main, args=(config, listener, child_end, counts, lost, slot),
                              name=f"callrelay-server-{slot}", daemon=True)
        try:
            process.start()
        except OSError as exc:
            log.warning("Could not start a recording server worker: %s", exc)
            parent_end.close()
            child_end.close()
            continue
        child_end.close()
        started.append(WorkerProcess(slot, process, parent_end))
    ready: list[WorkerProcess] = []
    deadline = time.monotonic() + START_TIMEOUT_S
    for worker in started:
        message = None
        try:
            while time.monotonic() < deadline:
                if worker.control.poll(0.05):
                    message = worker.control.recv()
                    break
                if not worker.process.is_alive():  # died while starting: say so now, not at the deadline
                    break
        except (EOFError, OSError):
            message = None
        if isinstance(message, tuple) and message[0] == "ready":
            worker.pid = int(message[1])
            ready.append(worker)
        else:
            log.warning("A recording server worker did not start (%s); serving with fewer processes",
                        message[1] if isinstance(message, tuple) and message[0] == "failed" else "no answer")
            worker.stop(1.0)
    return ready


def ignore_interrupts() -> None:
    """Ctrl-C reaches the whole process group: a child leaves it to the parent, which stops it."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)


def listen_to_parent(set_public_url: Callable[[str | None], None], control: Connection, stop: Any) -> Any:
    """The callback a child's loop runs when its pipe is readable."""

    def on_message() -> None:
        try:
            message = control.recv()
        except (EOFError, OSError):
            stop()  # the parent has gone
            return
        if message[0] == "stop":
            stop()
        elif message[0] == "public_url":
            set_public_url(message[1])

    return on_message

