"""The one C extension: the recording server's fast path (desktop_app/server/_fastserve.c), Linux only.

Everything else about the package is in pyproject.toml. Where it is not built (another OS), the server
answers the same requests through its Python fast path (RecordingServer._fast).
"""

import sys

from setuptools import Extension, setup

ext_modules = []
if sys.platform == "linux":
    # optional: without a C compiler `make run` still installs (the Python fast path serves); `make
    # test` installs one first, and tests/server/test_server_fast.py fails when it was not built
    ext_modules.append(Extension("desktop_app.server._fastserve", ["desktop_app/server/_fastserve.c"],
                                 extra_compile_args=["-O2", "-Wall", "-Werror"], optional=True))

setup(ext_modules=ext_modules)
