"""Hardware drivers: lock boards, GPIO inputs, camera. Implementations of the protocols in drivers.base."""
