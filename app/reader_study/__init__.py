"""Reader-study mode: protocol, schedule, timing, event log, outputs and analysis. Must not import Qt."""
