"""``python -m subsetter``: the same as the ``subset`` command."""

from subsetter.cli import main

main()
