"""Built-in search-space generators: ``manual`` (the identity) and ``autospace``."""
