"""Hardware simulator: the same wire protocols as the real boards and camera, with fault injection."""
