"""Built-in algorithms (each module one plugin)."""
