"""``python -m kitefeed`` runs the command line."""

from .cli import main

main()
