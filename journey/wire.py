"""The button wire format: compact, versioned callback data `v1|kind|arg|...` within 64 bytes.

Every button the bot makes carries data in this format, and every tap is read back with it: the
one place that knows the format and Telegram's 64-byte limit. A button from an older release
carries another version prefix (or none) and is refused politely instead of being misread.

A question's button is `v1|q|<round id>|<question id>|<option id>`. Round ids are 32-bit
database ids (at most 10 digits), which leaves QUESTION_KEY_BUDGET bytes for the question id
and option id together; survey validation holds every survey to that (surveys.schema
BUTTON_KEY_BUDGET, checked below to fit).
"""

from __future__ import annotations

from dataclasses import dataclass

from journey import actions
from surveys.schema import BUTTON_KEY_BUDGET

VERSION = "v1"
MAX_BYTES = 64
# Bounds for data that comes back: Telegram sends what the bot put on a button, but anyone can
# send an update to a webhook or tap an old button, so nothing is parsed before it fits these.
MAX_ARGS = 4  # the most any button of ours carries ("c": deep link, language, source)
MAX_INT = 2**31 - 1  # ids are 32-bit integer columns; larger numbers name nothing of ours

# Special "options" on question buttons; survey option ids are [a-z0-9_-], so `~` never clashes.
BACK = "~b"
SKIP = "~s"
DONE = "~d"
PAGE = "~p"  # "~p<n>": show page n of a long list of options

QUESTION = "q"
# "v1|q|" + a 10-digit round id + the two "|" around the question id.
QUESTION_OVERHEAD = len(f"{VERSION}|{QUESTION}|") + len(str(MAX_INT)) + 2
QUESTION_KEY_BUDGET = MAX_BYTES - QUESTION_OVERHEAD
if BUTTON_KEY_BUDGET > QUESTION_KEY_BUDGET:  # a format change must not outgrow valid surveys
    raise AssertionError(
        f"surveys allow {BUTTON_KEY_BUDGET} bytes of question and option id; the button format "
        f"leaves {QUESTION_KEY_BUDGET}"
    )


class CallbackTooLong(ValueError):
    """Callback data that Telegram would refuse (over 64 bytes)."""


@dataclass(frozen=True)
class Callback:
    """Parsed callback data: a kind and its arguments."""

    kind: str
    args: tuple[str, ...]

    def arg(self, index: int, default: str = "") -> str:
        """Argument `index`, or `default` when absent."""
        return self.args[index] if index < len(self.args) else default


def encode(kind: str, *args: object) -> str:
    """Build callback data; raises CallbackTooLong past 64 bytes."""
    data = "|".join([VERSION, kind, *(str(arg) for arg in args)])
    if len(data.encode()) > MAX_BYTES:
        raise CallbackTooLong(data)
    return data


def decode(data: str | None) -> Callback | None:
    """Parse callback data of this version; None for another version, garbage or data out of
    bounds (over 64 bytes, too many parts, a number beyond any id, digits int() refuses).

    A number that passes can be given to int() and to the database without error, so a forged
    huge round id is an "old button" notice, not an OverflowError.
    """
    if not data or len(data) > MAX_BYTES or len(data.encode()) > MAX_BYTES:
        return None
    parts = data.split("|", MAX_ARGS + 2)
    if len(parts) < 2 or len(parts) > MAX_ARGS + 2 or parts[0] != VERSION or not parts[1]:
        return None
    args = tuple(parts[2:])
    for arg in args:
        if arg.isdigit() and not (arg.isascii() and int(arg) <= MAX_INT):
            return None
    return Callback(parts[1], args)


# ---- actions <-> callback data ---------------------------------------------------------------

# Kinds on the wire; short, because they count against the 64 bytes.
_KINDS: dict[type, str] = {
    actions.Consent: "c",
    actions.Decline: "cn",
    actions.ChooseLanguage: "l",
    actions.KeepLanguage: "lc",
    actions.SwitchLanguage: "ls",
    actions.DeclineSwitch: "lx",
    actions.ChooseMunicipality: "m",
    actions.ChooseArea: "a",
    actions.AreaMenu: "ab",
    actions.ChooseNeighbourhood: "n",
    actions.AreaOnly: "n0",
    actions.AnswerButton: QUESTION,
    actions.StartSurvey: "s",
    actions.Forget: "f",
    actions.KeepArea: "ak",
    actions.React: "rh",
}
# Buttons on alliance responses (groups and programme staff), one kind per verb.
_RESPONSE_KINDS = {
    actions.SUBMIT: "rs",
    actions.CANCEL: "rx",
    actions.APPROVE: "ra",
    actions.REJECT: "rj",
}
_RESPONSE_VERBS = {kind: verb for verb, kind in _RESPONSE_KINDS.items()}


def encode_action(action: actions.Action) -> str:
    """The callback data of a button; raises CallbackTooLong past 64 bytes."""
    kind = _KINDS[type(action)]
    match action:
        case actions.Consent(payload, language, source):
            return encode(kind, payload, language, source)
        case actions.Decline(language):
            return encode(kind, language)
        case actions.ChooseLanguage(code) | actions.SwitchLanguage(code):
            return encode(kind, code)
        case actions.ChooseMunicipality(code) | actions.ChooseArea(code):
            return encode(kind, code)
        case actions.ChooseNeighbourhood(code) | actions.AreaOnly(code):
            return encode(kind, code)
        case actions.AreaMenu(outside):
            return encode(kind, "x") if outside else encode(kind)
        case actions.AnswerButton(round_id, question_id, option):
            return encode(kind, round_id, question_id, option)
        case actions.StartSurvey(round_id):
            return encode(kind, round_id)
        case actions.Forget(confirm):
            return encode(kind, "y" if confirm else "n")
        case actions.React(response_id, helpful):
            return encode(kind, response_id, "y" if helpful else "n")
    return encode(kind)


def decode_action(data: str | None) -> actions.Action | None:
    """The action a tap asks for; None for another release's button, garbage or a kind unknown."""
    parsed = decode(data)
    if parsed is None:
        return None
    arg = parsed.arg
    match parsed.kind:
        case "c":
            return actions.Consent(arg(0), arg(1), arg(2))
        case "cn":
            return actions.Decline(arg(0))
        case "l":
            return actions.ChooseLanguage(arg(0))
        case "lc":
            return actions.KeepLanguage()
        case "ls":
            return actions.SwitchLanguage(arg(0))
        case "lx":
            return actions.DeclineSwitch()
        case "m":
            return actions.ChooseMunicipality(arg(0))
        case "a":
            return actions.ChooseArea(arg(0))
        case "ab":
            return actions.AreaMenu(outside=arg(0) == "x")
        case "n":
            return actions.ChooseNeighbourhood(arg(0))
        case "n0":
            return actions.AreaOnly(arg(0))
        case "ak":
            return actions.KeepArea()
        case "q":
            if not arg(0).isdigit() or not arg(1) or not arg(2):
                return None
            return actions.AnswerButton(int(arg(0)), arg(1), arg(2))
        case "s":
            return actions.StartSurvey(int(arg(0))) if arg(0).isdigit() else actions.StartSurvey(0)
        case "f":
            return actions.Forget(confirm=arg(0) == "y")
        case "rh":
            if not arg(0).isdigit() or arg(1) not in ("y", "n"):
                return None
            return actions.React(int(arg(0)), helpful=arg(1) == "y")
    return None


def encode_response_button(button: actions.ResponseButton) -> str:
    """The callback data of a button on an alliance response."""
    return encode(_RESPONSE_KINDS[button.verb], button.response_id)


def decode_response_button(data: str | None) -> actions.ResponseButton | None:
    """The alliance-response button a tap means; None for anything else."""
    parsed = decode(data)
    if parsed is None or parsed.kind not in _RESPONSE_VERBS or not parsed.arg(0).isdigit():
        return None
    return actions.ResponseButton(int(parsed.arg(0)), _RESPONSE_VERBS[parsed.kind])


def is_response_button(data: object) -> bool:
    """Whether callback data is of a button on an alliance response (a handler's pattern)."""
    return isinstance(data, str) and decode_response_button(data) is not None
