"""The ``hub-scheduler`` command line: `main` holds the group and the process commands,
`admin` the operator commands, `common` what they share."""

from hub_scheduler.entrypoints.cli.main import cli

__all__ = ["cli"]
