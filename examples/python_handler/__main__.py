"""``python -m examples.python_handler``: run the reference handler (see ``server.py`` for the options)."""

from .server import main

raise SystemExit(main())
