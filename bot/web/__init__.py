"""The HTTP surface: Slack's request URL and the health check."""
