"""Login lockout that a stranger cannot turn against an account's owner.

Failures are counted per account and client network (IPv4 /24, IPv6 /64): `login_max_failures`
of them within the window lock the account *for that network* only. A much higher ceiling,
`login_max_account_failures` from all networks together, locks the account everywhere, which
bounds distributed guessing; a password reset lifts every lock (`clear`). A stranger elsewhere
can therefore lock out only themselves, until they spread their guesses over enough networks
to reach the ceiling, and the owner can always end that with a reset.

Each attempt is counted atomically *before* the password is checked (one Lua script call), so
a burst of concurrent guesses cannot slip past the limit while the first ones are still being
hashed; a success takes its own attempt and its network's failures back. The state lives on
the security Redis and fails closed: when it is unreachable, logins answer 503.

Keys, per account: `lockout:{<email>}` (a hash: field `*` or a network -> locked until, ms) and
`login_failures:{<email>}` (a sorted set of `<network>|<nonce>` scored by time).
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from typing import NoReturn

from redis.asyncio import Redis

from common.auth.errors import AccountLocked
from common.config import Settings
from common.errors import ServiceUnavailable
from common.logging import get_logger
from common.metrics import REDIS_FAILURES
from common.redis import REDIS_ERRORS
from common.security.network import client_network

log = get_logger(__name__)

ACCOUNT_WIDE = "*"
UNAVAILABLE_RETRY_AFTER = "5"

# KEYS[1] lock hash, KEYS[2] failures; ARGV[1] network, ARGV[2] nonce, ARGV[3] window (ms),
# ARGV[4] lock (ms), ARGV[5] network limit, ARGV[6] account limit.
# Returns {1, 0, 0} (attempt counted) or {0, ms until the lock ends, 1 if this attempt set it}.
_BEGIN = """
local net, window, lock = ARGV[1], tonumber(ARGV[3]), tonumber(ARGV[4])
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local function locked_until(field)
  return tonumber(redis.call('HGET', KEYS[1], field)) or 0
end
local until_ms = math.max(locked_until('*'), locked_until(net))
if until_ms > now then return {0, until_ms - now, 0} end
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', now - window)
local entries = redis.call('ZRANGE', KEYS[2], 0, -1)
local prefix = net .. '|'
local mine = {}
for _, entry in ipairs(entries) do
  if string.sub(entry, 1, #prefix) == prefix then mine[#mine + 1] = entry end
end
local field = nil
if #entries >= tonumber(ARGV[6]) then
  field = '*'
  redis.call('DEL', KEYS[2])
elseif #mine >= tonumber(ARGV[5]) then
  field = net
  redis.call('ZREM', KEYS[2], unpack(mine))
end
if field then
  redis.call('HSET', KEYS[1], field, now + lock)
  if redis.call('PTTL', KEYS[1]) < lock then redis.call('PEXPIRE', KEYS[1], lock) end
  return {0, lock, 1}
end
redis.call('ZADD', KEYS[2], now, prefix .. ARGV[2])
redis.call('PEXPIRE', KEYS[2], window)
return {1, 0, 0}
"""

# KEYS[1] failures; ARGV[1] network: a success forgives its network's failures (its own
# attempt included).
_FORGIVE = """
local prefix = ARGV[1] .. '|'
local mine = {}
for _, entry in ipairs(redis.call('ZRANGE', KEYS[1], 0, -1)) do
  if string.sub(entry, 1, #prefix) == prefix then mine[#mine + 1] = entry end
end
if #mine > 0 then redis.call('ZREM', KEYS[1], unpack(mine)) end
return #mine
"""


def _lock_key(email: str) -> str:
    return "lockout:{" + email + "}"


def _failures_key(email: str) -> str:
    return "login_failures:{" + email + "}"


@dataclass(frozen=True, slots=True)
class LoginAttempt:
    """A counted attempt: which account, from which network, under which entry."""

    email: str
    network: str
    nonce: str

    @property
    def entry(self) -> str:
        return f"{self.network}|{self.nonce}"


class LoginLockout:
    def __init__(self, redis: Redis, settings: Settings) -> None:
        self._redis = redis
        self._settings = settings
        self._begin = redis.register_script(_BEGIN)
        self._forgive = redis.register_script(_FORGIVE)

    async def begin_attempt(self, email: str, client: str) -> LoginAttempt:
        """Count this attempt, or raise AccountLocked (423) if the account may not be tried
        from this network now, or ServiceUnavailable (503) if the count cannot be kept."""
        attempt = LoginAttempt(email, client_network(client), secrets.token_hex(8))
        settings = self._settings
        try:
            counted, wait_ms, newly_locked = await self._begin(
                keys=[_lock_key(email), _failures_key(email)],
                args=[
                    attempt.network,
                    attempt.nonce,
                    settings.login_failure_window_seconds * 1000,
                    settings.lockout_seconds * 1000,
                    settings.login_max_failures,
                    settings.login_max_account_failures,
                ],
            )
        except REDIS_ERRORS as exc:
            self._unavailable(exc)
        if not counted:
            raise AccountLocked(max(1, -(-int(wait_ms) // 1000)), newly=bool(newly_locked))
        return attempt

    async def succeeded(self, attempt: LoginAttempt) -> None:
        """The password was right: the network's failures (this attempt's too) are forgiven."""
        try:
            await self._forgive(keys=[_failures_key(attempt.email)], args=[attempt.network])
        except REDIS_ERRORS as exc:
            REDIS_FAILURES.labels(operation="lockout").inc()
            log.warning("lockout_forgive_failed", error=str(exc))

    async def withdraw(self, attempt: LoginAttempt) -> None:
        """The password could not be checked (too busy, or the database failed): not a
        failure, or an outage would lock out everyone who tried during it."""
        try:
            await self._redis.zrem(_failures_key(attempt.email), attempt.entry)
        except REDIS_ERRORS as exc:
            REDIS_FAILURES.labels(operation="lockout").inc()
            log.warning("lockout_withdraw_failed", error=str(exc))

    async def clear(self, email: str) -> None:
        """A password reset proves control of the account: every lock and failure goes."""
        try:
            await self._redis.delete(_lock_key(email), _failures_key(email))
        except REDIS_ERRORS as exc:
            REDIS_FAILURES.labels(operation="lockout").inc()
            log.error("lockout_clear_failed", error=str(exc))

    @staticmethod
    def _unavailable(exc: BaseException) -> NoReturn:
        REDIS_FAILURES.labels(operation="lockout").inc()
        log.error("lockout_unavailable", error=str(exc))
        raise ServiceUnavailable(
            "Sign-in is unavailable for a moment; try again shortly",
            headers={"Retry-After": UNAVAILABLE_RETRY_AFTER},
        ) from exc
