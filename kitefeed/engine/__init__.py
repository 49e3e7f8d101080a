"""Supervisor, worker processes, connections, allocation and statistics."""
