"""Running tests directly on executors (SENTINEL_EXECUTION=direct or hybrid), without the queue."""
