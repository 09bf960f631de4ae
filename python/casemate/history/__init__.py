"""The history store: every verify and harden run (drift later) recorded per run and per host x
control, in SQLite under the state directory or in PostgreSQL shared by several controllers.
See docs/history.md."""
