"""Code both Sentinel services use: settings, Redis keys, the job model, codec, queue ops, errors."""
