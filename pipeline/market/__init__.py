"""Market data: pool states venues publish and planners follow."""
