"""Built-in datasets (each module one plugin)."""
