"""The one base of the errors a user can act on.

Trouble in the world — a damaged settings file, a history on a full disk, a data directory that
cannot be written — is raised as a ``UserError`` whose message is one sentence naming the file and
what to do. The ``callrelay`` command prints that sentence instead of a traceback; a bug is any other
exception, and keeps its traceback.
"""

from __future__ import annotations


class UserError(Exception):
    """An error whose message is one sentence a user can act on; ``exit_code`` is the command's status."""

    exit_code = 1
