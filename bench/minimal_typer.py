"""The smallest Typer app with Rich help, as a start-up baseline: what any Typer CLI pays to print --help."""

import typer

app = typer.Typer(rich_markup_mode="rich")


@app.command()
def gen(prompt: str) -> None:
    """Make an image."""


@app.command()
def info(path: str) -> None:
    """Show an image's settings."""


if __name__ == "__main__":
    app()
