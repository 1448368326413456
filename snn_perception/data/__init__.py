"""Small data files shipped with the package (the demo dive's photographs)."""
