"""The queue and its unsent drafts on disk: kept, restored, and a damaged file is one sentence, ignored."""

from __future__ import annotations

from pathlib import Path

import pytest

from desktop_app import paths
from desktop_app.sync import drafts


def test_the_queue_and_its_fields_come_back_in_order(callrelay_home: Path) -> None:
    queue = [drafts.Draft("/calls/b.wav", {"title": "Renewal", "notes": "call back\nFriday", "duration_s": 63}),
             drafts.Draft("/calls/a.wav", {})]
    drafts.save(queue)
    assert paths.drafts_file().parent == callrelay_home
    loaded, problem = drafts.load()
    assert problem == ""
    assert loaded == queue
    assert [p.name for p in callrelay_home.iterdir() if p.name.startswith(".drafts-")] == []  # no temporary left


def test_no_file_is_an_empty_queue_without_a_word(callrelay_home: Path) -> None:
    assert drafts.load() == ([], "")


@pytest.mark.parametrize("content", [b"{not json", b'{"queue": 3}', b'[1, 2]', b'{"queue": [{"fields": {}}]}',
                                     b'{"queue": [{"path": "/a.wav", "fields": [1]}]}', b"\xff\xfe\x00garbage"])
def test_a_damaged_file_is_one_sentence_and_ignored(callrelay_home: Path, content: bytes) -> None:
    paths.drafts_file().write_bytes(content)
    loaded, problem = drafts.load()
    assert loaded == []
    assert str(paths.drafts_file()) in problem and problem.endswith(".") and "\n" not in problem
    assert "Traceback" not in problem
    assert paths.drafts_file().read_bytes() == content  # left as it was, for the user to look at


def test_a_file_that_cannot_be_written_is_one_sentence_and_the_old_queue_is_kept(callrelay_home: Path) -> None:
    drafts.save([drafts.Draft("/calls/old.wav")])
    with pytest.raises(drafts.DraftsError) as err:  # a folder that is not there: the write fails for real
        drafts.save([drafts.Draft("/calls/new.wav")], callrelay_home / "gone" / "drafts.json")
    assert "gone" in str(err.value) and str(err.value).count(".") >= 1 and "\n" not in str(err.value)
    paths.drafts_file().unlink()
    paths.drafts_file().mkdir()  # something in the file's place: the rename fails, nothing is left behind
    with pytest.raises(drafts.DraftsError, match="could not be saved"):
        drafts.save([drafts.Draft("/calls/new.wav")])
    assert [p.name for p in callrelay_home.iterdir() if p.name.startswith(".drafts-")] == []
