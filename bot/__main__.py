"""Allow `python -m bot` as a synonym for the `frugal` command."""

from bot.cli import main

raise SystemExit(main())
