"""Entry points: the Sanic app factory, its routes, auth, error handlers and the poller."""
