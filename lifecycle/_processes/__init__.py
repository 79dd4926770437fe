"""Child processes: the process component, readiness probes, process groups, commands."""
