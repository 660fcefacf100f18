"""The ``callrelay`` subcommands: the app's outer layer beside ``ui``.

Each module adds its subcommands through ``register(subparsers)``; a handler takes the parsed
arguments and returns the exit code. Commands wire the domain packages together through
``desktop_app.runtime``; nothing below this layer imports a command module.
"""
