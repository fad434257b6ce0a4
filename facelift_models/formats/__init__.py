"""File formats written and read by the pack."""
