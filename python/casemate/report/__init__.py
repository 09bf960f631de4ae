"""Reports. report.json is the record; every other format is rendered from it."""
