"""The per-host probe: every observation a verification needs, gathered in one remote command."""
