"""The ``hub-scheduler`` command line."""

import click

from hub_scheduler import __version__


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="hub-scheduler")
def cli() -> None:
    """hub_scheduler: run, inspect and steer background jobs."""


def main() -> None:
    """Console-script entry point."""
    cli()
