"""Built-in plugins. Each is an ordinary pluggy plugin, registered like a third-party one."""
