"""The ngrok provider through the real SDK. A real ngrok tunnel needs the internet and an account;
here the SDK is pointed at loopback addresses, where it fails the way it fails offline."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator

import pytest
from tunnel_helpers import free_port, wait_for

from desktop_app import keystore
from desktop_app.tunnel import Backoff, TunnelConfigError, TunnelError, TunnelState
from desktop_app.tunnel.providers.ngrok import NgrokConfig, NgrokTunnel, describe_ngrok_error


@pytest.fixture
def hangup_server() -> Iterator[int]:
    """A loopback port that accepts connections and closes them (no TLS): a broken ngrok ingress."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen()

    def serve() -> None:
        while True:
            try:
                conn, _ = sock.accept()
            except OSError:
                return
            conn.close()

    threading.Thread(target=serve, daemon=True).start()
    yield int(sock.getsockname()[1])
    sock.close()


def test_no_authtoken_in_the_keyring_is_a_clear_error() -> None:
    keystore.delete(keystore.NGROK_AUTHTOKEN)
    tunnel = NgrokTunnel(NgrokConfig(local_addr="127.0.0.1:8765"))
    with pytest.raises(TunnelConfigError, match="No ngrok authtoken"):
        tunnel.start()
    assert tunnel.state is TunnelState.STOPPED


def test_unreachable_service_is_reported_and_retried() -> None:
    """The SDK cannot connect (as offline): down, a sentence saying the internet is needed, retries."""
    keystore.set(keystore.NGROK_AUTHTOKEN, "test-token-from-keyring")
    cfg = NgrokConfig(local_addr="127.0.0.1:8765", server_addr=f"127.0.0.1:{free_port()}")
    tunnel = NgrokTunnel(cfg, backoff=Backoff(0.05, 0.1))
    assert tunnel.start() is TunnelState.DOWN
    try:
        error = tunnel.last_error or ""
        assert "needs the internet" in error and "failed to establish tcp connection" in error
        assert tunnel.public_url is None
    finally:
        tunnel.stop()


def test_a_broken_ingress_is_a_tls_error(hangup_server: int) -> None:
    tunnel = NgrokTunnel(NgrokConfig(local_addr="127.0.0.1:8765", server_addr=f"127.0.0.1:{hangup_server}"),
                         authtoken="tok", backoff=Backoff(0.05, 0.1))
    seen: list[str] = []
    tunnel.add_listener(lambda e: seen.append(e.message))
    tunnel.start()
    try:
        assert wait_for(lambda: sum("tls handshake" in m for m in seen) >= 1, 5)
        assert tunnel.state is TunnelState.DOWN
    finally:
        tunnel.stop()


def test_options_carry_the_reserved_domain() -> None:
    tunnel = NgrokTunnel(NgrokConfig(local_addr="127.0.0.1:1", domain="https://calls.ngrok.app/"))
    assert tunnel.options() == {"proto": "http", "domain": "calls.ngrok.app"}


@pytest.mark.parametrize(("args", "kind", "words"), [
    (("failed to connect session", "authentication failed: The authtoken you specified is not valid.",
      "ERR_NGROK_105"), TunnelConfigError, "rejected the authtoken"),
    (("failed to start listener", "Your account is limited to 1 simultaneous ngrok agent sessions.\n\n"
      "ERR_NGROK_108"), TunnelError, "agent sessions in use"),
    (("failed to start listener", "The domain 'x.ngrok.app' is not reserved", "ERR_NGROK_319"),
     TunnelConfigError, "not reserved in your ngrok account"),
    (("failed to connect session", "failed to establish tcp connection"), TunnelError, "needs the internet"),
])
def test_sdk_errors_become_sentences(args: tuple[str, ...], kind: type[TunnelError], words: str) -> None:
    err = describe_ngrok_error(ValueError(*args))
    assert type(err) is kind and words in str(err)
