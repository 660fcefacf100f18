"""Syncing recordings to HubSpot: the recording store and catalogue (``recordings``), the history
store and the submission pipeline built on them."""
