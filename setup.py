"""The one C extension: the recording server's fast path (desktop_app/server/_fastserve.c), Linux only.

Everything else about the package is in pyproject.toml. Where it is not built (another OS, or no C
compiler), the general path answers every request. A build that fails does not stop the install: it
prints a warning saying so (pip shows it with -v; `make` runs `callrelay --version` after installing,
which says it too, as does the self-test).
"""

import sys

from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext

WARNING = """
****************************************************************************************************
WARNING: the recording server's C fast path (desktop_app/server/_fastserve.c) did not compile:
  {error}
Call Relay installs and works without it: the general path answers every request, at about 1.6x the
CPU per range. `callrelay --version` and the self-test say so. To build it, install gcc and Python's
headers (Debian/Ubuntu: apt install gcc python3-dev) and install again.
****************************************************************************************************
"""


class BuildExtOrWarn(build_ext):
    """build_ext that, when the C fast path does not compile, says so plainly and goes on."""

    def run(self):
        try:
            super().run()
        except Exception as exc:  # no compiler at all (DistutilsPlatformError) and the like
            self._warn(exc)

    def build_extension(self, ext):
        try:
            super().build_extension(ext)
        except Exception as exc:  # CompileError, LinkError, DistutilsExecError (CC not found)
            self._warn(exc)

    @staticmethod
    def _warn(exc):
        text = WARNING.format(error=f"{type(exc).__name__}: {exc}")
        sys.stderr.write(text)


ext_modules = []
if sys.platform == "linux":
    # `make test` installs a compiler first, and tests/server/test_server_fast.py fails when it was not built
    ext_modules.append(Extension("desktop_app.server._fastserve", ["desktop_app/server/_fastserve.c"],
                                 extra_compile_args=["-O2", "-Wall", "-Werror"]))

setup(ext_modules=ext_modules, cmdclass={"build_ext": BuildExtOrWarn})
