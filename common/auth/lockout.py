"""Login lockout that a stranger cannot turn against an account's owner.

Failures are counted per account and client network (IPv4 /24, IPv6 /64): `login_max_failures`
of them within the window lock the account *for that network* only. A much higher ceiling,
`login_max_account_failures` from all networks together, locks the account everywhere, which
bounds distributed guessing; a password reset lifts every lock (`clear`). A stranger elsewhere
can therefore lock out only themselves. Spreading guesses over enough networks to reach the
ceiling (easy from one IPv6 host holding a /48) locks out only the networks the account has
not signed in from lately: a network with a successful sign-in in the last
`login_known_network_days` is spared the account-wide lock (never its own network lock), so the
owner keeps signing in from home or work, and a reset ends the rest.

Each attempt is counted atomically *before* the password is checked (one Lua script call), so
a burst of concurrent guesses cannot slip past the limit while the first ones are still being
hashed; a success takes its own attempt and its network's failures back. The state lives on
the security Redis and fails closed: when it is unreachable, logins answer 503.

Keys, per account: `lockout:{<email>}` (a hash: field `*` or a network -> locked until, ms),
`login_failures:{<email>}` (a sorted set of `<network>|<nonce>` scored by time) and
`login_known:{<email>}` (a sorted set of networks scored by their last success, at most
`KNOWN_NETWORKS_KEPT`).
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
KNOWN_NETWORKS_KEPT = 20

# KEYS[1] lock hash, KEYS[2] failures, KEYS[3] known networks; ARGV[1] network, ARGV[2] nonce,
# ARGV[3] window (ms), ARGV[4] lock (ms), ARGV[5] network limit, ARGV[6] account limit,
# ARGV[7] how long a success keeps a network known (ms).
# Returns {1, 0, 0} (attempt counted) or {0, ms until the lock ends, 1 if this attempt set it}.
_BEGIN = """
local net, window, lock = ARGV[1], tonumber(ARGV[3]), tonumber(ARGV[4])
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local function locked_until(field)
  return tonumber(redis.call('HGET', KEYS[1], field)) or 0
end
local wide = locked_until('*')
if wide > now then
  local known = tonumber(redis.call('ZSCORE', KEYS[3], net))
  if known and known > now - tonumber(ARGV[7]) then wide = 0 end
end
local until_ms = math.max(wide, locked_until(net))
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

# KEYS[1] failures, KEYS[2] known networks; ARGV[1] network, ARGV[2] how long it stays known
# (ms), ARGV[3] how many are kept: a success forgives its network's failures (its own attempt
# included) and makes the network known.
_FORGIVE = """
local prefix = ARGV[1] .. '|'
local mine = {}
for _, entry in ipairs(redis.call('ZRANGE', KEYS[1], 0, -1)) do
  if string.sub(entry, 1, #prefix) == prefix then mine[#mine + 1] = entry end
end
if #mine > 0 then redis.call('ZREM', KEYS[1], unpack(mine)) end
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call('ZADD', KEYS[2], now, ARGV[1])
redis.call('ZREMRANGEBYRANK', KEYS[2], 0, -tonumber(ARGV[3]) - 1)
redis.call('PEXPIRE', KEYS[2], ARGV[2])
return #mine
"""


def _lock_key(email: str) -> str:
    return "lockout:{" + email + "}"


def _failures_key(email: str) -> str:
    return "login_failures:{" + email + "}"


def _known_key(email: str) -> str:
    return "login_known:{" + email + "}"


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
        self._known_ms = settings.login_known_network_days * 86_400_000

    async def begin_attempt(self, email: str, client: str) -> LoginAttempt:
        """Count this attempt, or raise AccountLocked (423) if the account may not be tried
        from this network now, or ServiceUnavailable (503) if the count cannot be kept."""
        attempt = LoginAttempt(email, client_network(client), secrets.token_hex(8))
        settings = self._settings
        try:
            counted, wait_ms, newly_locked = await self._begin(
                keys=[_lock_key(email), _failures_key(email), _known_key(email)],
                args=[
                    attempt.network,
                    attempt.nonce,
                    settings.login_failure_window_seconds * 1000,
                    settings.lockout_seconds * 1000,
                    settings.login_max_failures,
                    settings.login_max_account_failures,
                    self._known_ms,
                ],
            )
        except REDIS_ERRORS as exc:
            self._unavailable(exc)
        if not counted:
            raise AccountLocked(max(1, -(-int(wait_ms) // 1000)), newly=bool(newly_locked))
        return attempt

    async def succeeded(self, attempt: LoginAttempt) -> None:
        """The password was right: the network's failures (this attempt's too) are forgiven,
        and the network is spared the account-wide lock from now on."""
        try:
            await self._forgive(
                keys=[_failures_key(attempt.email), _known_key(attempt.email)],
                args=[attempt.network, self._known_ms, KNOWN_NETWORKS_KEPT],
            )
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
        """A password reset proves control of the account: every lock and failure goes (the
        networks it signed in from stay known)."""
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
