"""Syncing recordings to HubSpot: the recording store and catalogue (``recordings``), the history
store and the submission pipeline built on them."""

# The file name endings an upload takes from a folder (`callrelay upload --folder`, the Upload page's
# file dialog and drops): here, below both, so that the UI needs no command module for them.
AUDIO_SUFFIXES = {".wav", ".flac", ".mp4", ".m4a", ".mp3", ".ogg", ".opus", ".webm", ".amr", ".gsm"}
