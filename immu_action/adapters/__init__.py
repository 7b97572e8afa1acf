"""Side effects: each adapter turns its library's exceptions into ``ImmuError`` subclasses."""
