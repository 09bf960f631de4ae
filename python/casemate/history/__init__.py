"""The history store: every verify, harden and drift run recorded per run and per host x
control, in SQLite under the state directory or in PostgreSQL shared by several controllers.
See docs/history.md."""
