"""One configuration for the recording server: ``callrelay serve`` and the app's root (``Runtime``) build it
from the same settings file with the same ``ServerConfig.from_settings``."""

from __future__ import annotations

import argparse
import dataclasses

from desktop_app import settings as settings_mod
from desktop_app.commands import server as serve_cmd
from desktop_app.runtime import Runtime
from desktop_app.server.config import ServerConfig

# every server.* setting away from its default, so a builder that skips one is caught
FILE_VALUES = {
    "server.host": "127.0.0.2", "server.port": 18765, "server.public_url": "https://calls.example.com",
    "server.endpoint_prefix": "/hs/recordings", "server.link_ttl_s": 900, "server.signature": "required",
    "server.max_connections": 77, "server.idle_timeout_s": 12.5, "server.workers": 3,
}


def serve_args(*flags: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="callrelay")
    serve_cmd.register(parser.add_subparsers())
    return parser.parse_args(["serve", *flags])


def write_settings() -> settings_mod.Settings:
    conf = settings_mod.Settings()
    conf.update(FILE_VALUES)
    conf.save()
    return settings_mod.load()  # as each of them reads it: from the file


def test_serve_and_the_app_build_the_same_server_configuration_from_one_settings_file() -> None:
    write_settings()
    served = serve_cmd.server_config(serve_args(), settings_mod.load(), "app-secret")
    assert isinstance(served, ServerConfig), served
    root = Runtime(settings_mod.load(), sandbox=False).server_config("app-secret")
    assert root == served
    # and both are the file's values, not defaults the two happen to share
    wanted = {"host": "127.0.0.2", "port": 18765, "public_url": "https://calls.example.com",
              "endpoint_prefix": "/hs/recordings", "link_ttl_s": 900.0, "signature_mode": "required",
              "max_connections": 77, "idle_timeout_s": 12.5, "workers": 3, "client_secret": "app-secret"}
    assert dataclasses.asdict(root) == wanted


def test_serves_flags_win_over_the_file_and_the_sandbox_takes_a_free_port() -> None:
    write_settings()
    served = serve_cmd.server_config(serve_args("--host", "127.0.0.3", "--port", "0", "--workers", "1",
                                                "--public-url", "https://other.example.com"), settings_mod.load())
    assert isinstance(served, ServerConfig), served
    assert (served.host, served.port, served.workers, served.public_url) == (
        "127.0.0.3", 0, 1, "https://other.example.com")
    assert served.endpoint_prefix == "/hs/recordings" and served.max_connections == 77  # the rest: the file's
    sandbox = Runtime(settings_mod.load(), sandbox=True).server_config()
    assert sandbox.port == 0 and sandbox.host == "127.0.0.2" and sandbox.link_ttl_s == 900.0
    assert serve_cmd.server_config(serve_args("--workers", "17"), settings_mod.load()) == (
        "--workers must be 1..16, not 17")
