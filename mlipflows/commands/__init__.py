"""CLI command modules. Each module defines ``register(app, bench)``; cli.py calls them all.

``app`` is the top-level typer app, ``bench`` the ``mlipflows bench ...`` group. Keeping each
area's commands in its own module keeps cli.py small and lets areas grow independently.
"""
