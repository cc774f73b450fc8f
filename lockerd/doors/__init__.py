"""Door control: the door controller component, its typed door events and the commissioning API."""
