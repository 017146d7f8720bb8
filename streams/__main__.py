"""``python -m streams`` is the same as the ``rapport`` command."""

from streams.cli import main

main()
