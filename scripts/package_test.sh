#!/usr/bin/env bash
# Run the built bundle's self-test the way a user's machine would run it: from outside the source
# tree, without the venv on PATH or PYTHONPATH, with no display (the window opens offscreen). Fails
# when the self-test fails or prints anything but "ok CHECK" / "FAIL CHECK: why" lines.
#
#   make package-test          (builds first; on Linux runs under scripts/with-keyring)
#   scripts/package_test.sh [BUNDLE_EXECUTABLE]
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
case "$(uname -s)" in
  Darwin) default="$root/dist/Call Relay.app/Contents/MacOS/callrelay" ;;
  MINGW*|MSYS*|CYGWIN*) default="$root/dist/Call Relay/callrelay-cli.exe" ;;
  *) default="$root/dist/Call Relay/callrelay" ;;
esac
exe="${1:-$default}"
if [[ ! -x "$exe" ]]; then
  echo "package-test: no bundle at $exe; run 'make package' first" >&2
  exit 1
fi

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
out="$work/stdout"
# A plain environment: the system PATH, no Python of ours, no Qt or display settings from the caller.
# The keyring's session bus (scripts/with-keyring) and the locale are kept.
status=0
(cd "$work" && env -u PYTHONPATH -u PYTHONHOME -u VIRTUAL_ENV -u QT_QPA_PLATFORM -u DISPLAY \
   -u WAYLAND_DISPLAY -u LD_LIBRARY_PATH -u CALLRELAY_HOME PATH=/usr/local/bin:/usr/bin:/bin \
   "$exe" --self-test >"$out" 2>"$work/stderr") || status=$?
cat "$out"
if [[ $status -ne 0 ]]; then
  echo "package-test: the bundle's self-test failed (exit $status); its stderr:" >&2
  tail -n 30 "$work/stderr" >&2
  exit 1
fi
unexpected="$(grep -v -E '^(ok [^:]+|FAIL [^:]+: .+)$' "$out" || true)"
if [[ -n "$unexpected" ]]; then
  echo "package-test: unexpected output from the self-test:" >&2
  echo "$unexpected" >&2
  exit 1
fi
checks=$(grep -c '^ok ' "$out" || true)
if [[ $checks -lt 8 ]]; then
  echo "package-test: only $checks checks ran" >&2
  exit 1
fi
# The same bundle on a real X server (Xvfb): the xcb platform plugin and the X libraries it carries load.
if [[ "$(uname -s)" == Linux ]] && command -v xvfb-run >/dev/null; then
  x_out="$(cd "$work" && env -u PYTHONPATH -u PYTHONHOME -u VIRTUAL_ENV -u QT_QPA_PLATFORM -u WAYLAND_DISPLAY \
    -u LD_LIBRARY_PATH -u CALLRELAY_HOME PATH=/usr/local/bin:/usr/bin:/bin \
    xvfb-run -a -s "-screen 0 1280x800x24" "$exe" --self-test --only window 2>"$work/x-stderr")" || {
    echo "package-test: the window did not open on X11 (xcb):" >&2; echo "$x_out" >&2; tail -n 30 "$work/x-stderr" >&2
    exit 1
  }
  if [[ "$x_out" != "ok window" ]]; then
    echo "package-test: unexpected output on X11: $x_out" >&2
    exit 1
  fi
  echo "ok window (X11, xcb)"
fi
echo "package-test: $checks checks passed in $(du -sh "$(dirname "$exe")" | cut -f1) bundle $exe"
