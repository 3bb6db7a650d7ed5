"""``python -m hub_scheduler`` runs the CLI."""

from hub_scheduler.entrypoints.cli.main import main

main()
