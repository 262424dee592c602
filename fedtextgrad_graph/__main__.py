"""``python -m fedtextgrad_graph`` runs the command line."""

from .cli import app

app()
