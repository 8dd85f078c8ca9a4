"""``python -m labctl``: the command line."""

from .cli.main import main

main()
