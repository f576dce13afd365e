"""amibot: a Slack ChatOps bot for the lifecycle of Amazon Machine Images."""
