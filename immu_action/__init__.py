"""immu-action: build once, test the very image that ships, promote that digest."""

__version__ = "0.1.0"
