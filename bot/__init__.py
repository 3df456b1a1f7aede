"""Frugal: cheap, fast writing help inside Slack, with an honest bill."""
