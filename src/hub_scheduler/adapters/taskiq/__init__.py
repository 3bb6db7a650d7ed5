"""taskiq integration: our queue as a taskiq broker, run by taskiq's Receiver."""
