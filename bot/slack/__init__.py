"""The Slack adapter: listeners, payload parsing and Block Kit replies."""
