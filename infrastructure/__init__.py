"""Adapters: settings, database, cache, CoinGecko client, security, embedded PostgreSQL."""
