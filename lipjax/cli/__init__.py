"""Command lines: thin absl programs over the library (`python -m lipjax.cli.NAME`)."""
