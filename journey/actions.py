"""What a resident's buttons mean: the abstract actions behind every button of the journey.

The journey puts these on buttons; journey/wire.py turns them into callback data and back.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Consent:
    """ "Yes, I take part": stores the resident. The deep link and the intro's language ride along."""

    payload: str = ""
    language: str = ""
    source: str = ""


@dataclass(frozen=True)
class Decline:
    """ "No, thank you" under the consent notice: nothing is stored."""

    language: str = ""


@dataclass(frozen=True)
class ChooseLanguage:
    """A language on the language step."""

    code: str


@dataclass(frozen=True)
class KeepLanguage:
    """ "Continue" on the language step."""


@dataclass(frozen=True)
class SwitchLanguage:
    """Yes to the offer to switch to the language the resident writes in."""

    code: str


@dataclass(frozen=True)
class DeclineSwitch:
    """No to that offer."""


@dataclass(frozen=True)
class ChooseMunicipality:
    """A municipality (by CBS code) on the area step."""

    code: str


@dataclass(frozen=True)
class ChooseArea:
    """A focus area, when a municipality has more than one."""

    code: str


@dataclass(frozen=True)
class AreaMenu:
    """Back to the municipalities; `outside`: "none of these" after a postcode."""

    outside: bool = False


@dataclass(frozen=True)
class ChooseNeighbourhood:
    """A neighbourhood."""

    code: str


@dataclass(frozen=True)
class AreaOnly:
    """ "I don't know my neighbourhood": the area without a neighbourhood."""

    area_code: str


@dataclass(frozen=True)
class AnswerButton:
    """A button of a question: an option, or back, skip or done (journey/wire.py BACK/SKIP/DONE)."""

    round_id: int
    question_id: str
    option: str


@dataclass(frozen=True)
class StartSurvey:
    """An invitation's button."""

    round_id: int


@dataclass(frozen=True)
class Forget:
    """The answer to "erase everything?"."""

    confirm: bool


@dataclass(frozen=True)
class KeepArea:
    """ "Keep this neighbourhood" under /area."""


@dataclass(frozen=True)
class React:
    """A reaction under an alliance's response to the residents: helpful or not."""

    response_id: int
    helpful: bool


Action = (
    Consent
    | Decline
    | ChooseLanguage
    | KeepLanguage
    | SwitchLanguage
    | DeclineSwitch
    | ChooseMunicipality
    | ChooseArea
    | AreaMenu
    | ChooseNeighbourhood
    | AreaOnly
    | AnswerButton
    | StartSurvey
    | Forget
    | KeepArea
    | React
)


# ---- buttons for the people around the journey ------------------------------------------------
# Not the resident's: an alliance group puts forward or withdraws its response, programme staff
# approve or reject it (handlers/responses.py, handlers/review.py). The wire format is shared.

SUBMIT = "submit"
CANCEL = "cancel"
APPROVE = "approve"
REJECT = "reject"


@dataclass(frozen=True)
class ResponseButton:
    """A button on an alliance response for its writers (submit, cancel) or reviewers
    (approve, reject)."""

    response_id: int
    verb: str
