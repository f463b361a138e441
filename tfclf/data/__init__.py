"""Data as users hold it, checked at the boundary: table files, texts and labels, the label
space, and what the Python API accepts."""
