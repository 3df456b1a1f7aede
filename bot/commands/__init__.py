"""The `frugal` subcommands, one module each, registered in bot.cli's table."""
