"""Everything that touches the outside world: command line, files, devices, the live loop."""
