"""Camera guard: frame analysis, the intake gate (Art. 19), evidence snapshots, the offline check tool."""
