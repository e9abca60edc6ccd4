"""What every stage stands on: the error tree, exit codes, diagnostics, limits, time formatting and the
one safe YAML loader. Imports nothing else of mcxa."""
