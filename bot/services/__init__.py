"""Services: what Frugal does, knowing nothing of Slack or of any SDK."""
