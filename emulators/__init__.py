"""Local emulators of the networks' HTTP APIs, for tests, benchmarks and the sandbox."""
