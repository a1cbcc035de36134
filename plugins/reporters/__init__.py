"""Built-in reporters (each module one plugin)."""
