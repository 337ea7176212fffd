"""The change feed: every change to a user's tasks and categories, in commit order, for clients
that keep a copy and sync it (`GET /api/v1/sync`)."""
