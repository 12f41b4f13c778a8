"""Command line interface (Typer). Heavy dependencies are imported inside commands."""
