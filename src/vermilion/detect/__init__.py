"""vermilion.detect."""
