"""Built-in spaces (each module one plugin)."""
