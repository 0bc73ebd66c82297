"""Alliance responses ("jullie zeiden, wij doen"): an alliance tells its area's residents what it
heard in a round and what it will do.

A response goes through these states (storage/alliance_responses.py holds the names):

    draft --submit (the group)--> pending --approve (programme staff)--> approved: queued for
      |                              |                                    the residents, once
      |                              +--reject (programme staff)-------> rejected
      +--cancel (the group) or a newer draft--+--cancel (the group)----> cancelled

Each function here is one transaction (the caller's session): it claims the update when there
is one (a repeat changes nothing), checks, moves the response on, and queues what has to go out
in the outbox (requests to staff, the messages to residents, the group's news). The outcome is
returned as texts and buttons (usecases/response_texts.py) for the Telegram adapter to show.
"""

from __future__ import annotations

import html
import logging
import re
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy.orm import Session

from bot.settings import Settings
from journey import actions
from locales.catalogue import MASTER, Catalogue
from storage import alliance_responses as store
from storage import outbox as outbox_store
from storage.alliances import alliance_of_chat
from storage.models import Alliance, AllianceResponse, Round
from storage.pseudonyms import short_pseudonym
from storage.residents import claim_update
from storage.survey_versions import SurveyVersions
from surveys.areas import Areas
from usecases.response_texts import TEXT_LIMIT, About, Reply, ResponseTexts, utf16_length

log = logging.getLogger(__name__)

REVIEW_KIND = "response_review"  # outbox: a request to approve, to each programme staff member
STATUS_KIND = "response_status"  # outbox: news about a response for its group
# Messages to residents that /stop withdraws while they wait in the outbox.
STOPPED_BY_STOP = ("invitation", "reminder", store.RESIDENT_KIND)
_TRANSLATION = re.compile(r"\s*#?(\d+)(?:\s+([A-Za-z]{2,3})\b)?\s*(.*)", re.DOTALL)


@dataclass
class ResponseEnv:
    """What the use cases need besides the session: texts, areas and a few settings."""

    catalogue: Catalogue
    areas: Areas
    min_n: int
    timezone: str
    languages: list[str]  # languages residents can have; translations are for all but Dutch
    reviewers: list[int]  # programme staff (Telegram user ids): asked to approve
    key: str  # the pseudonym key: a reviewer is recorded by pseudonym
    surveys: SurveyVersions  # the database's stored survey versions, parsed once
    bot_id: int = 0  # update claims are per bot (0 where no update is handled: the CLI)

    @classmethod
    def build(
        cls,
        settings: Settings,
        catalogue: Catalogue,
        areas: Areas,
        languages: list[str],
        surveys: SurveyVersions,
    ) -> ResponseEnv:
        """From the settings (the bot and the CLI alike) and the database's survey versions."""
        return cls(
            catalogue=catalogue,
            areas=areas,
            surveys=surveys,
            min_n=settings.min_cell_size,
            timezone=settings.timezone,
            languages=languages,
            reviewers=list(settings.admin_ids),
            key=settings.pseudonym_key,
            bot_id=settings.bot_id,
        )

    @property
    def texts(self) -> ResponseTexts:
        """The renderer."""
        return ResponseTexts(self.catalogue, self.min_n, self.timezone)

    @property
    def translatable(self) -> list[str]:
        """Languages a translation may be given in."""
        return [lang for lang in self.languages if lang != MASTER]

    def reviewer(self, telegram_id: int) -> str:
        """How a staff member who decided is recorded: a short pseudonym, not their id."""
        return "telegram:" + short_pseudonym(self.key, str(telegram_id), "reviewer")


@dataclass
class Result:
    """What to show after a command or a tap."""

    replies: list[Reply] = field(default_factory=list)
    edit: Reply | None = None  # replaces the tapped message
    notice: str | None = None  # a short word on the tapped button
    alert: bool = False
    repeat: bool = False  # the update was handled before: nothing to show


@dataclass(frozen=True)
class Replied:
    """The message a command or message replies to."""

    message_id: int
    from_bot: bool
    text: str


def about(session: Session, env: ResponseEnv, response: AllianceResponse) -> About:
    """What the texts need to know of a response."""
    round_ = session.get(Round, response.round_id)
    area = env.areas.get(response.area_code)
    titles: dict[str, str] = {}
    default = MASTER
    round_name = round_.name if round_ is not None else "?"
    if round_ is not None:
        survey = env.surveys.survey(session, round_.survey_version_id)
        titles, default = dict(survey.title), survey.default_language
    return About(
        id=response.id,
        status=response.status,
        area_name=area.name if area is not None else response.area_code,
        round_name=round_name,
        titles=titles,
        title_default=default,
        text=response.text,
        translations=dict(response.translations or {}),
        reviewed_at=response.reviewed_at,
        review_note=response.review_note,
    )


def _too_long(env: ResponseEnv, lang: str, text: str) -> Result | None:
    length = utf16_length(text)
    if length <= TEXT_LIMIT:
        return None
    return Result(
        [
            Reply(
                env.texts.t(
                    lang,
                    "responses.group.too_long",
                    length=env.texts.number(lang, length),
                    limit=env.texts.number(lang, TEXT_LIMIT),
                )
            )
        ]
    )


def _group(session: Session, chat_id: int, lang: str) -> tuple[Alliance | None, str]:
    """The chat's alliance, and the language to answer in (the alliance's, when linked)."""
    alliance = alliance_of_chat(session, chat_id)
    return alliance, alliance.language if alliance is not None else lang


def _not_linked(env: ResponseEnv, lang: str) -> Result:
    return Result([Reply(env.texts.t(lang, "responses.group.not_linked"))])


# ---- the group writes ------------------------------------------------------------------------


def draft(
    session: Session,
    env: ResponseEnv,
    *,
    chat_id: int,
    update_id: int,
    text: str,
    replied: Replied | None,
    now: datetime,
    lang: str = MASTER,
    only_digest_replies: bool = False,
) -> Result | None:
    """/reactie TEXT (or a reply): a new draft and its preview. None: not for us (a plain reply
    to a bot message that is not a digest).

    The text is the command's, else that of the message replied to (a member's own). A reply to
    one of the bot's digests makes the response about that digest's round; otherwise it is about
    the area's latest round. `only_digest_replies`: a plain message replying to the bot, which
    starts a draft only when it replies to a digest.
    """
    if not claim_update(session, env.bot_id, update_id, now):
        return Result(repeat=True)
    digest, digest_round = (False, None)
    if replied is not None and replied.from_bot:
        digest, digest_round = store.digest_round(session, chat_id, replied.message_id)
    if only_digest_replies and not digest:
        return None
    alliance, lang = _group(session, chat_id, lang)
    if alliance is None:
        return _not_linked(env, lang)
    texts = env.texts
    body = text.strip()
    if not body and replied is not None and not replied.from_bot:
        body = replied.text.strip()
    if not body:
        return Result([Reply(texts.t(lang, "responses.group.usage"))])
    too_long = _too_long(env, lang, body)
    if too_long is not None:
        return too_long
    area = env.areas.get(alliance.area_code)
    area_name = area.name if area is not None else alliance.area_code
    round_ = session.get(Round, digest_round) if digest_round else None
    if round_ is None:
        round_ = store.latest_round(session, alliance.area_code)
    if round_ is None:
        return Result(
            [Reply(texts.t(lang, "responses.group.no_round", area=html.escape(area_name)))]
        )
    recipients = store.count_recipients(session, round_.id, alliance.area_code)
    if recipients == 0:
        return Result(
            [
                Reply(
                    texts.t(
                        lang,
                        "responses.group.no_recipients",
                        area=html.escape(area_name),
                        round=html.escape(round_.name),
                    )
                )
            ]
        )
    response, replaced = store.create_draft(
        session,
        alliance_id=alliance.id,
        area_code=alliance.area_code,
        round_id=round_.id,
        text=body,
        now=now,
    )
    log.info("alliance response %d drafted (round %d)", response.id, round_.id)
    replies = texts.preview(lang, about(session, env, response), recipients, env.translatable)
    if replaced:
        ids = ", ".join(f"#{n}" for n in replaced)
        replies[-1].text += "\n\n" + texts.t(lang, "responses.group.replaced", ids=ids)
    return Result(replies)


def translate(
    session: Session,
    env: ResponseEnv,
    *,
    chat_id: int,
    update_id: int,
    args: str,
    replied: Replied | None,
    now: datetime,
    lang: str = MASTER,
) -> Result:
    """/vertaling ID LANG TEXT: add or replace a translation of the group's draft."""
    if not claim_update(session, env.bot_id, update_id, now):
        return Result(repeat=True)
    alliance, lang = _group(session, chat_id, lang)
    if alliance is None:
        return _not_linked(env, lang)
    texts = env.texts
    usage = Result(
        [Reply(texts.t(lang, "responses.translation.usage", languages=", ".join(env.translatable)))]
    )
    match = _TRANSLATION.fullmatch(args)
    if match is None or match.group(2) is None:
        return usage
    response_id, code, body = int(match.group(1)), match.group(2).lower(), match.group(3).strip()
    if not body and replied is not None and not replied.from_bot:
        body = replied.text.strip()
    if not body:
        return usage
    if code not in env.translatable:
        return Result(
            [
                Reply(
                    texts.t(
                        lang,
                        "responses.translation.bad_language",
                        code=code,
                        languages=", ".join(env.translatable),
                    )
                )
            ]
        )
    response = store.get_response(session, response_id, lock=True)
    if response is None or response.alliance_id != alliance.id:
        return Result([Reply(texts.t(lang, "responses.group.unknown", id=response_id))])
    if response.status != store.DRAFT:
        return Result(
            [
                Reply(
                    texts.t(
                        lang,
                        "responses.translation.not_draft",
                        id=response.id,
                        status=texts.status(lang, about(session, env, response)),
                    )
                )
            ]
        )
    too_long = _too_long(env, lang, body)
    if too_long is not None:
        return too_long
    store.set_translation(response, code, body)
    session.flush()
    described = about(session, env, response)
    recipients = store.count_recipients(session, response.round_id, response.area_code)
    shown, _, _ = texts.for_resident(described, code, buttons=False)
    details = texts.details(lang, described, recipients, env.translatable)
    details.text = (
        texts.t(
            lang,
            "responses.translation.added",
            id=response.id,
            language=texts.languages(lang, [code]),
        )
        + "\n\n"
        + details.text
    )
    return Result([shown, details])


def _tell_group(session: Session, response: AllianceResponse, now: datetime, text: str) -> None:
    """Queue news about a response for its group (when the group is still linked)."""
    alliance = session.get(Alliance, response.alliance_id) if response.alliance_id else None
    if alliance is None:
        return
    outbox_store.enqueue(
        session,
        kind=STATUS_KIND,
        dedupe_key=f"response-status:{response.id}:{response.status}",
        chat_id=alliance.chat_id,
        is_group=True,
        alliance_id=alliance.id,
        method="sendMessage",
        payload=Reply(text).payload(),
        now=now,
    )


def _group_language(session: Session, response: AllianceResponse) -> str:
    alliance = session.get(Alliance, response.alliance_id) if response.alliance_id else None
    return alliance.language if alliance is not None else MASTER


def group_tap(
    session: Session,
    env: ResponseEnv,
    *,
    chat_id: int,
    update_id: int,
    response_id: int,
    verb: str,
    now: datetime,
    lang: str = MASTER,
) -> Result:
    """Submit or cancel, tapped under a draft's preview in the group."""
    if not claim_update(session, env.bot_id, update_id, now):
        return Result(repeat=True)
    alliance, lang = _group(session, chat_id, lang)
    texts = env.texts
    response = store.get_response(session, response_id, lock=True)
    if alliance is None or response is None or response.alliance_id != alliance.id:
        return Result(notice=texts.t(lang, "responses.group.unknown", id=response_id), alert=True)
    recipients = store.count_recipients(session, response.round_id, response.area_code)
    if verb == actions.SUBMIT:
        if not store.move(session, response.id, [store.DRAFT], store.PENDING, submitted_at=now):
            return _not_draft(session, env, lang, response)
        described = about(session, env, response)
        news = texts.t(lang, "responses.group.submitted", time=texts.time(now))
        if env.reviewers:
            _ask_reviewers(session, env, response, described, recipients, alliance, now)
        else:
            news += "\n" + texts.t(lang, "responses.group.no_reviewers", id=response.id)
            log.warning(
                "alliance response %d put forward, but no programme staff is set", response.id
            )
        log.info("alliance response %d put forward for approval", response.id)
        edit = texts.details(lang, described, recipients, env.translatable, buttons=False)
        edit.text += "\n\n" + news
        return Result(edit=edit, notice=texts.t(lang, "responses.group.submitted_short"))
    # cancel: a draft, or a response still waiting for approval
    if not store.move(session, response.id, [store.DRAFT, store.PENDING], store.CANCELLED):
        return _not_draft(session, env, lang, response)
    log.info("alliance response %d cancelled by its group", response.id)
    edit = texts.details(
        lang, about(session, env, response), recipients, env.translatable, buttons=False
    )
    edit.text += "\n\n" + texts.t(lang, "responses.group.cancelled")
    return Result(edit=edit, notice=texts.t(lang, "responses.group.cancelled"))


def _not_draft(session: Session, env: ResponseEnv, lang: str, response: AllianceResponse) -> Result:
    session.refresh(response)
    texts = env.texts
    notice = texts.t(
        lang,
        "responses.group.not_draft",
        id=response.id,
        status=texts.status(lang, about(session, env, response)),
    )
    return Result(notice=notice, alert=True)


def _ask_reviewers(
    session: Session,
    env: ResponseEnv,
    response: AllianceResponse,
    described: About,
    recipients: int,
    alliance: Alliance,
    now: datetime,
) -> None:
    """Queue the request to approve for every programme staff member (in their private chat)."""
    chat = alliance.title or f"#{alliance.id}"
    replies = env.texts.review(MASTER, described, recipients, chat)
    messages = [
        outbox_store.NewMessage(
            kind=REVIEW_KIND,
            dedupe_key=f"review:{response.id}:{staff}:{part}",
            chat_id=staff,
            method="sendMessage",
            payload=reply.payload(),
        )
        for staff in env.reviewers
        for part, reply in enumerate(replies)
    ]
    outbox_store.enqueue_many(session, messages, now)


# ---- programme staff decide -----------------------------------------------------------------


@dataclass
class Review:
    """What an approval or rejection did.

    outcome: approved | rejected | unknown | not_pending (then `response` says its status).
    """

    outcome: str
    response: AllianceResponse | None = None
    about: About | None = None
    recipients: int = 0
    by_language: dict[str, int] = field(default_factory=dict)


def approve(
    session: Session, env: ResponseEnv, response_id: int, *, reviewer: str, now: datetime
) -> Review:
    """Approve a pending response: queue it, once, for every resident of the area who answered
    the round and did not /stop, in their language where the group translated it."""
    response = store.get_response(session, response_id, lock=True)
    if response is None:
        return Review("unknown")
    if not store.move(
        session, response.id, [store.PENDING], store.APPROVED, reviewed_by=reviewer, reviewed_at=now
    ):
        session.refresh(response)
        return Review("not_pending", response, about(session, env, response))
    described = about(session, env, response)
    texts = env.texts
    rendered: dict[str, tuple[Reply, str, bool]] = {}
    planned: dict[int, tuple[store.Recipient, store.NewRecipient]] = {}
    for to in store.recipients(session, response.round_id, response.area_code, response.id):
        lang = to.language if to.language in env.languages else MASTER
        if lang not in rendered:
            rendered[lang] = texts.for_resident(described, lang)
        _, sent_in, translated = rendered[lang]
        planned[to.resident_id] = (to, store.NewRecipient(to.resident_id, sent_in, translated))
    recorded = store.record_recipients(
        session, response.id, [row for _, row in planned.values()], now
    )
    by_language: dict[str, int] = {}
    messages = []
    for resident_id in sorted(recorded):
        to, row = planned[resident_id]
        lang = to.language if to.language in env.languages else MASTER
        by_language[row.language] = by_language.get(row.language, 0) + 1
        messages.append(
            outbox_store.NewMessage(
                kind=store.RESIDENT_KIND,
                dedupe_key=store.resident_dedupe_key(response.id, resident_id),
                chat_id=to.chat_id,
                resident_id=resident_id,
                method="sendMessage",
                payload=rendered[lang][0].payload(),
            )
        )
    outbox_store.enqueue_many(session, messages, now)
    glang = _group_language(session, response)
    _tell_group(
        session,
        response,
        now,
        texts.t(
            glang,
            "responses.group.approved",
            id=response.id,
            recipients=texts.count(glang, len(recorded)),
            area=html.escape(described.area_name),
        ),
    )
    log.info("alliance response %d approved: %d message(s) queued", response.id, len(recorded))
    return Review("approved", response, described, len(recorded), by_language)


def reject(
    session: Session,
    env: ResponseEnv,
    response_id: int,
    *,
    reviewer: str,
    now: datetime,
    reason: str | None = None,
) -> Review:
    """Reject a pending response: nothing goes to residents; the group hears it (and why)."""
    response = store.get_response(session, response_id, lock=True)
    if response is None:
        return Review("unknown")
    note = (reason or "").strip() or None
    if not store.move(
        session,
        response.id,
        [store.PENDING],
        store.REJECTED,
        reviewed_by=reviewer,
        reviewed_at=now,
        review_note=note,
    ):
        session.refresh(response)
        return Review("not_pending", response, about(session, env, response))
    texts = env.texts
    glang = _group_language(session, response)
    news = texts.t(glang, "responses.group.rejected", id=response.id)
    if note:
        news += "\n" + texts.t(
            glang, "responses.group.rejected_reason", reason=html.escape(note, quote=False)
        )
    _tell_group(session, response, now, news)
    log.info("alliance response %d rejected", response.id)
    return Review("rejected", response, about(session, env, response))


def staff_tap(
    session: Session,
    env: ResponseEnv,
    *,
    update_id: int,
    staff_id: int,
    response_id: int,
    verb: str,
    now: datetime,
    lang: str = MASTER,
) -> Result:
    """Approve or reject, tapped by programme staff under a request to approve."""
    if not claim_update(session, env.bot_id, update_id, now):
        return Result(repeat=True)
    texts = env.texts
    reviewer = env.reviewer(staff_id)
    if verb == actions.APPROVE:
        review = approve(session, env, response_id, reviewer=reviewer, now=now)
    else:
        review = reject(session, env, response_id, reviewer=reviewer, now=now)
    if review.outcome == "unknown":
        return Result(notice=texts.t(lang, "responses.review.unknown", id=response_id), alert=True)
    assert review.about is not None
    if review.outcome == "not_pending":
        text = texts.t(
            lang,
            "responses.review.not_pending",
            id=response_id,
            status=texts.status(lang, review.about),
        )
        return Result(edit=Reply(text), notice=text, alert=True)
    if review.outcome == "approved":
        text = texts.t(
            lang,
            "responses.review.approved",
            id=response_id,
            recipients=texts.number(lang, review.recipients),
        )
    else:
        text = texts.t(lang, "responses.review.rejected", id=response_id)
    return Result(edit=Reply(text), notice=text)


def waiting(session: Session, env: ResponseEnv, lang: str = MASTER) -> list[Reply]:
    """/reacties for programme staff: every response waiting for approval, as a request."""
    texts = env.texts
    pending = store.list_responses(session, statuses=[store.PENDING])
    if not pending:
        return [Reply(texts.t(lang, "responses.review.none"))]
    replies: list[Reply] = []
    for response in reversed(pending):  # oldest first: the newest ends up at the bottom
        alliance = session.get(Alliance, response.alliance_id) if response.alliance_id else None
        chat = (alliance.title or f"#{alliance.id}") if alliance is not None else "-"
        recipients = store.count_recipients(session, response.round_id, response.area_code)
        replies += texts.review(lang, about(session, env, response), recipients, chat)
    return replies


def overview(
    session: Session,
    env: ResponseEnv,
    *,
    chat_id: int,
    update_id: int,
    now: datetime,
    lang: str = MASTER,
) -> Result:
    """/reacties in a group: its latest responses, their state, recipients and reactions
    (counts under the min cell size as "fewer than N")."""
    if not claim_update(session, env.bot_id, update_id, now):
        return Result(repeat=True)
    alliance, lang = _group(session, chat_id, lang)
    if alliance is None:
        return _not_linked(env, lang)
    texts = env.texts
    area = env.areas.get(alliance.area_code)
    area_name = html.escape(area.name if area is not None else alliance.area_code)
    responses = store.responses_of_alliance(session, alliance.id)
    if not responses:
        return Result([Reply(texts.t(lang, "responses.overview.none"))])
    counts = store.tallies(session, [r.id for r in responses])
    lines = [texts.t(lang, "responses.overview.title", area=area_name)]
    for response in responses:
        described = about(session, env, response)
        lines += [
            "",
            texts.t(
                lang,
                "responses.overview.item",
                id=response.id,
                round=html.escape(described.round_name),
                status=texts.status(lang, described),
            ),
        ]
        if response.status == store.APPROVED:
            tally = counts[response.id]
            lines.append(
                texts.t(
                    lang,
                    "responses.overview.sent",
                    recipients=texts.count(lang, tally.recipients),
                    helpful=texts.count(lang, tally.helpful),
                    not_helpful=texts.count(lang, tally.not_helpful),
                )
            )
        elif response.status == store.REJECTED and response.review_note:
            lines.append(
                texts.t(
                    lang,
                    "responses.group.rejected_reason",
                    reason=html.escape(response.review_note, quote=False),
                )
            )
    lines += ["", texts.t(lang, "responses.overview.note", n=texts.number(lang, env.min_n))]
    return Result([Reply("\n".join(lines))])


# ---- resident side ------------------------------------------------------------------------------


def stop_messages(session: Session, resident_id: int) -> int:
    """/stop: messages queued for this resident on the bot's own initiative are not sent.

    Invitations, reminders and alliance responses still waiting in the outbox are withdrawn;
    a withdrawn response is no longer counted as sent to them.
    """
    keys = outbox_store.drop_pending_for_resident(session, resident_id, STOPPED_BY_STOP)
    pairs = []
    for key in keys:
        parts = key.split(":")
        if len(parts) == 3 and parts[0] == "response" and parts[1].isdigit():
            pairs.append((int(parts[1]), resident_id))
    store.forget_unsent(session, pairs)
    return len(keys)
