"""Replays of the attack classes the app was attacked with (issue 15's proof).

Each attack class is a module here with ``attack(count, workdir) -> Result``: it makes ``count``
tries of its kind against the real app (real server on loopback, real files, real databases) and
records every try whose outcome was not the promised one (a traceback, a 5xx, a hang, a changed
file, memory growth...). ``replay.py`` runs them all and prints tries and failures per class;
``test_attacks.py`` runs each with a small count in ``make test``.
"""
