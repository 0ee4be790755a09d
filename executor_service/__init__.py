"""Sentinel executor: claims jobs from Redis Streams and runs them in Chromium."""
