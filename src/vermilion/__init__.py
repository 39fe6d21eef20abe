"""vermilion: fast multi-band deblending."""
