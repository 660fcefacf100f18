"""The app's start reads the account's portal once (``account_details``). Since the client reports a 5xx at
once (retries in one layer, issue 16), the root tries that read again with the pipeline's retry policy, so a
passing hiccup at HubSpot does not leave the window "Not connected" until a restart; a lasting one still
says so in one sentence."""

from __future__ import annotations

import os

import pytest

from desktop_app import settings as settings_mod
from desktop_app.runtime import Runtime, SetupError
from desktop_app.sandbox import Sandbox
from desktop_app.sync.pipeline import RetryPolicy

POLICY = RetryPolicy(base_s=0.01, cap_s=0.05, max_attempts=8, search_lag_s=0.05, in_flight_s=0.2,
                     ready_evidence_wait_s=0.2)


def _settings() -> settings_mod.Settings:
    settings = settings_mod.Settings()
    settings.update({"hubspot.sandbox": False, "server.port": 0})
    return settings


def _env(sb: Sandbox) -> dict[str, str]:
    """The account as a desk has it before its first start: no portal id yet (the app reads it)."""
    env = {k: v for k, v in os.environ.items() if k != "HUBSPOT_PORTAL_ID"}
    return {**env, **{k: v for k, v in sb.env().items() if k != "HUBSPOT_PORTAL_ID"}}


def _reads(sb: Sandbox) -> int:
    return sum(1 for r in sb.requests if r.alias == "account.details")


def test_a_passing_5xx_at_start_is_tried_again() -> None:
    with Sandbox(port=0) as sb:
        sb.faults.add_spec("account.details:503x2")
        rt = Runtime(_settings(), env=_env(sb), policy=POLICY)
        try:
            rt.start()
            assert rt.portal_id and _reads(sb) == 3
        finally:
            rt.stop()


def test_a_lasting_5xx_at_start_is_one_sentence_after_a_few_tries() -> None:
    with Sandbox(port=0) as sb:
        sb.faults.add_spec("account.details:503x*")
        rt = Runtime(_settings(), env=_env(sb), policy=POLICY)
        try:
            with pytest.raises(SetupError, match="HubSpot cannot be reached with this account"):
                rt.start()
            assert _reads(sb) == 3
        finally:
            rt.stop()
