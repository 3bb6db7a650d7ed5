"""The engines: the worker pump and the scheduler loop, typed to the domain's ports only."""
