"""Type stubs of the C decoding loop."""



import numpy as np

LAYOUT: dict[str, int]
"""Field offsets the C code writes, compared with TICK_DTYPE at import."""
RECORD_SIZE: int

def decode(
    message: bytes | bytearray | memoryview, out: np.ndarray, recv_time_ns: int, key_index: int, connection_index: int, /
) -> tuple[int, int, int, int, int, int]:
    """Return (written, packets, short, truncated, unknown length, missing)."""
    ...
