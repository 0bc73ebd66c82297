"""How far away the emulated Telegram seems: latency with jitter, and calls that fail.

A fault-free emulator that answers at once hides what residents meet: Telegram's servers are
about 100 ms away, refuse calls with 429 (flood control) or 5xx, and connections break. The
emulator consults a `Network` on every Bot API call (in-process and over HTTP alike):

- `latency` (plus or minus `jitter`): half before Telegram acts, half on the way back.
- `refuse_429`, `refuse_5xx`: a share of calls refused before anything happens (429 with
  `retry_after`, 502 Bad Gateway).
- `connect_error`: a share of calls whose connection fails, so the request never arrives
  (in-process: httpx.ConnectError; over HTTP the connection is closed without an answer).
- `lose_response`: a share of calls that Telegram carries out but whose answer is lost on the
  way back: the client cannot know whether it worked (httpx.ReadError in-process).

Faults apply to `methods` (by default the calls a bot makes while talking to people, not
getUpdates, webhooks or start-up calls). `fail_next(method, *kinds)` scripts exact faults for
tests: the next calls of that method fail in that order, whatever the shares say.
"""

from __future__ import annotations

import random
from collections import deque
from dataclasses import dataclass, field
from typing import Literal

FaultKind = Literal["429", "5xx", "connect", "lose"]
FAULT_KINDS: tuple[FaultKind, ...] = ("429", "5xx", "connect", "lose")

# Lower-case Bot API methods that faults apply to unless told otherwise.
DEFAULT_FAULT_METHODS = frozenset(
    {
        "sendmessage",
        "editmessagetext",
        "editmessagereplymarkup",
        "editmessagecaption",
        "answercallbackquery",
        "sendphoto",
        "senddocument",
        "deletemessage",
        "sendchataction",
    }
)


class NetworkFault(Exception):
    """A call that fails below HTTP: the connection broke before or after Telegram acted."""

    def __init__(self, kind: FaultKind, *, performed: bool) -> None:
        super().__init__(f"emulated network fault: {kind}")
        self.kind = kind
        self.performed = performed


@dataclass
class Network:
    """Latency, jitter and fault shares of the emulated Bot API; all off by default."""

    latency: float = 0.0  # seconds per call, round trip
    jitter: float = 0.0  # +/- seconds, uniform
    refuse_429: float = 0.0  # share of calls refused with 429 Too Many Requests
    retry_after: int = 1  # the retry_after of those 429s, in seconds
    refuse_5xx: float = 0.0  # share refused with 502 Bad Gateway
    connect_error: float = 0.0  # share whose connection fails before the request arrives
    lose_response: float = 0.0  # share carried out whose answer never arrives
    methods: frozenset[str] = DEFAULT_FAULT_METHODS
    seed: int | None = None
    _script: dict[str, deque[FaultKind]] = field(default_factory=dict, repr=False)
    _rng: random.Random = field(default_factory=random.Random, repr=False)

    def __post_init__(self) -> None:
        self.reseed(self.seed)

    def reseed(self, seed: int | None) -> None:
        """Start the random faults and jitter again from `seed` (reproducible runs)."""
        self.seed = seed
        self._rng = random.Random(seed)

    @property
    def faulty(self) -> bool:
        """True when any call may fail."""
        shares = (self.refuse_429, self.refuse_5xx, self.connect_error, self.lose_response)
        return any(share > 0 for share in shares) or any(self._script.values())

    def fail_next(self, method: str, *kinds: FaultKind) -> None:
        """Script faults: the next calls of `method` fail as `kinds` say, in order."""
        for kind in kinds:
            if kind not in FAULT_KINDS:
                raise ValueError(f"unknown fault {kind!r}; one of {', '.join(FAULT_KINDS)}")
        self._script.setdefault(method.lower(), deque()).extend(kinds)

    def clear_script(self) -> None:
        """Forget scripted faults that have not happened yet."""
        self._script.clear()

    def delays(self) -> tuple[float, float]:
        """Seconds to wait before Telegram acts and before its answer arrives."""
        if self.latency <= 0 and self.jitter <= 0:
            return 0.0, 0.0
        total = max(0.0, self.latency + self._rng.uniform(-self.jitter, self.jitter))
        return total / 2, total / 2

    def fault_for(self, method: str) -> FaultKind | None:
        """The fault this call of `method` meets, if any (scripted first, then by share)."""
        name = method.lower()
        script = self._script.get(name)
        if script:
            return script.popleft()
        if name not in self.methods:
            return None
        draw = self._rng.random()
        for kind, share in (
            ("429", self.refuse_429),
            ("5xx", self.refuse_5xx),
            ("connect", self.connect_error),
            ("lose", self.lose_response),
        ):
            if draw < share:
                return kind  # type: ignore[return-value]
            draw -= share
        return None

    def configure(self, **values: object) -> None:
        """Set fields from plain values (the control API and CLI options)."""
        for key, value in values.items():
            if key in (
                "latency",
                "jitter",
                "refuse_429",
                "refuse_5xx",
                "connect_error",
                "lose_response",
            ):
                setattr(self, key, _share_or_seconds(key, value))
            elif key == "retry_after":
                setattr(self, key, max(1, int(str(value))))
            elif key == "methods":
                if isinstance(value, str):
                    value = [m for m in value.split(",") if m.strip()]
                if not isinstance(value, list | tuple | set | frozenset):
                    raise ValueError("methods: a list of Bot API method names")
                self.methods = frozenset(str(m).strip().lower() for m in value)
            elif key == "seed":
                self.reseed(None if value is None else int(str(value)))
            else:
                raise ValueError(f"unknown network setting {key!r}")
        shares = self.refuse_429 + self.refuse_5xx + self.connect_error + self.lose_response
        if shares > 1:
            raise ValueError("the fault shares add up to more than 1")

    def describe(self) -> dict[str, object]:
        """The settings as plain values."""
        return {
            "latency": self.latency,
            "jitter": self.jitter,
            "refuse_429": self.refuse_429,
            "retry_after": self.retry_after,
            "refuse_5xx": self.refuse_5xx,
            "connect_error": self.connect_error,
            "lose_response": self.lose_response,
            "methods": sorted(self.methods),
            "seed": self.seed,
        }


def _share_or_seconds(key: str, value: object) -> float:
    number = float(str(value))
    if number < 0:
        raise ValueError(f"{key} cannot be negative")
    if key not in ("latency", "jitter") and number > 1:
        raise ValueError(f"{key} is a share between 0 and 1")
    return number
