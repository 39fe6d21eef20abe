"""vermilion.display."""
