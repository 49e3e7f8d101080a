"""Single-producer, many-consumer rings of fixed-size numpy records in shared memory."""
