"""guard: the data-plane gateway (auth, enforcement, rate limits, proxying, durable call log)."""
