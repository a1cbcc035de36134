"""Built-in launchers (each module one plugin): where a run's workers run."""
