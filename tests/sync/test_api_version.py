"""``hubspot.api_version = 2026-09``: the whole pipeline against the sandbox on HubSpot's dated API.

A call is logged, associated, marked ready, fetched and transcribed, every request the client sent went
to a 2026-09 path (bar the operations HubSpot publishes no dated copy of), and the sandbox found nothing
in its answers outside the 2026-09 descriptions.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from sync_helpers import write_call

from desktop_app import settings as settings_mod
from desktop_app.hubspot import versions
from desktop_app.runtime import Runtime
from desktop_app.sync import history as h
from desktop_app.sync.pipeline import CallDetails, RetryPolicy

FAST = RetryPolicy(base_s=0.01, cap_s=0.05, search_lag_s=0.05, ready_evidence_wait_s=2.0,
                   transcript_first_check_s=0.05, transcript_cap_s=0.1, transcript_deadline_s=30)
# HubSpot publishes no dated copy of these (2026-09 files): they keep their path.
UNVERSIONED = ("/calling/v1/dispositions", "/account-info/v3/details", "/oauth/")


@pytest.fixture
def dated() -> Iterator[Runtime]:
    settings = settings_mod.Settings()
    settings.set("hubspot.api_version", "2026-09")
    rt = Runtime(settings, sandbox=True, policy=FAST)
    rt.start()
    yield rt
    rt.stop()


def test_the_pipeline_on_the_2026_09_api_reaches_ready_and_transcribed(dated: Runtime, tmp_path: Path) -> None:
    assert dated.config is not None and dated.config.api_version == "2026-09"
    contact = str(dated.sandbox.contacts()[0]["id"])
    owner = next(str(o["id"]) for o in dated.sandbox.owners() if o.get("paid_seat"))
    sid = dated.submit(write_call(tmp_path / "call.wav"), CallDetails(title="Dated", duration_ms=3000,
                                                                      owner_id=owner, contact_id=contact))
    sub = dated.run_submission(sid)
    assert sub.status == h.READY, sub.error
    assert dated.sandbox.ready_marked() == [sub.call_id]
    links = [(a["fromType"], a["fromId"], a["toType"], a["toId"]) for a in dated.sandbox.associations()]
    assert ("calls", sub.call_id, "contacts", contact) in links
    assert dated.sandbox.wait_for_fetch(sub.call_id, timeout=30).status == "transcribed"
    assert dated.check_transcript(sid).submission.status == h.TRANSCRIBED

    paths = [r.path for r in dated.sandbox.requests]
    undated = sorted({p for p in paths if versions.version_of(p) is None and not p.startswith(UNVERSIONED)
                      and not p.endswith("/labels")})
    assert undated == [], f"requests on v3 paths under hubspot.api_version=2026-09: {undated}"
    for family in ("/crm/objects/2026-09/calls", "/crm/extensions/calling/2026-09/recordings/ready",
                   "/crm/extensions/calling/2026-09/"):
        assert any(p.startswith(family) for p in paths), (family, paths)
    assert dated.sandbox.response_problems == [], dated.sandbox.response_problems
