"""A Kite-protocol WebSocket server for tests, the demo and benchmarks."""
