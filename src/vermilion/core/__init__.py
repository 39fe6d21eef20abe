"""vermilion.core."""
