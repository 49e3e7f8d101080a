"""Command-line commands, one module each; registered in :mod:`kitefeed.cli`."""
