"""The control catalog: one YAML entry per CIS control, the single source of truth."""
