"""The PySide6 desktop app: shows state and starts work; the only package that imports Qt."""
