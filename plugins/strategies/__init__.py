"""Built-in strategy plugins (each an ordinary ``sep`` plugin, registered like a venue)."""
