"""One module per group of endpoints; ``app.py`` includes them."""
