"""GPIO: tamper and mains-fail inputs, GPIO door switches, status LED and buzzer."""
