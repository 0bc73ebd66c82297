"""/results for residents: their area's latest published figures, short, in their language."""

from __future__ import annotations

import html
from datetime import datetime

from telegram import Update
from telegram.ext import ContextTypes

from digests import TOTAL
from digests.model import NONE_OPTIONS, Cell, PublishedTable, QuestionInfo
from digests.suppression import OFTEN, is_problem, yes_option
from handlers.context import services
from handlers.replies import reply
from locales import numbers
from usecases.resident_results import Results, results_for_resident
from usecases.services import Services

TOP_ITEMS = 3
# A trend question's answers worth naming (VM "vooruit / achteruit gegaan").
TREND_OPTIONS = ("vooruit", "achteruit")
# The programme's own "what first" question: its three most chosen topics.
PRIORITY_ITEM = "NPLV.prioriteit"


def _moment(svc: Services, lang: str, moment: datetime) -> str:
    local = moment.astimezone(svc.settings.tz)
    return f"{numbers.day(local.date(), lang)}, {local:%H:%M}"


def _round_line(svc: Services, lang: str, results: Results) -> str:
    round_ = results.round_
    name = html.escape(round_.name, quote=False)
    opens = numbers.day(round_.opens_at.astimezone(svc.settings.tz).date(), lang)
    if round_.standing:
        return svc.text(lang, "alliance.results.round_standing", round=name, opens=opens)
    closes = numbers.day(round_.closes_at.astimezone(svc.settings.tz).date(), lang)
    return svc.text(lang, "alliance.results.round", round=name, opens=opens, closes=closes)


def _why(svc: Services, lang: str, cell: Cell | None) -> str:
    reason = cell.suppressed if cell is not None else None
    if reason in ("secondary", "few_new"):
        return svc.text(lang, f"digest.hidden.{reason}")
    return svc.text(lang, "digest.too_few")


def _figures(svc: Services, lang: str, table: PublishedTable) -> list[str]:
    """Grades, yes shares, the neighbourhood's trend, what happens often, what to tackle first."""

    def t(key: str, **params: object) -> str:
        return svc.text(lang, f"alliance.results.{key}", **params)

    def shares(q: QuestionInfo, options: list[str]) -> list[tuple[float, str, Cell]]:
        found = []
        for oid in options:
            cell = table.cell("current", TOTAL, q.id, "share:" + oid)
            if cell is not None and cell.shown and cell.value is not None:
                found.append((cell.value, q.option_label(oid, lang), cell))
        return found

    lines: list[str] = []
    problems: list[tuple[float, str]] = []
    for q in table.questions:
        label = html.escape(q.label_in(lang), quote=False)
        if q.type == "grade":
            cell = table.cell("current", TOTAL, q.id, "mean")
            if cell is None:
                continue
            if not cell.shown or cell.value is None:
                lines.append(t("hidden", label=label, why=_why(svc, lang, cell)))
            else:
                value = numbers.number(cell.value, lang)
                lines.append(
                    t("mean", label=label, value=value, n=numbers.count(cell.n or 0, lang))
                )
        elif q.type == "yesno":
            cell = table.cell("current", TOTAL, q.id, "share:" + yes_option(q))
            if cell is None:
                continue
            if not cell.shown or cell.value is None:
                lines.append(t("hidden", label=label, why=_why(svc, lang, cell)))
            else:
                share = numbers.percent(cell.value, lang)
                lines.append(
                    t("share", label=label, value=share, n=numbers.count(cell.n or 0, lang))
                )
        elif is_problem(q):
            cell = table.cell("current", TOTAL, q.id, "share:" + OFTEN)
            if cell is not None and cell.shown and cell.value is not None:
                name = q.label_in(lang)
                problems.append((cell.value, name.split(": ", 1)[-1]))
        elif q.type == "single" and set(TREND_OPTIONS) <= set(q.option_ids):
            found = shares(q, list(TREND_OPTIONS))
            if found:
                items = " · ".join(
                    f"{html.escape(name, quote=False)} {numbers.percent(v, lang)}"
                    for v, name, _ in found
                )
                n = numbers.count(found[0][2].n or 0, lang)
                lines.append(t("choices", label=label, items=items, n=n))
        elif q.type == "single" and q.item == PRIORITY_ITEM:
            found = sorted(shares(q, q.option_ids), key=lambda item: -item[0])[:TOP_ITEMS]
            if found:
                items = ", ".join(
                    f"{html.escape(name, quote=False)} {numbers.percent(v, lang)}"
                    for v, name, _ in found
                )
                n = numbers.count(found[0][2].n or 0, lang)
                lines.append(t("choices", label=label, items=items, n=n))
        elif q.type == "multi":
            found = [
                item
                for item in shares(q, q.option_ids)
                if item[2].measure.removeprefix("share:") not in NONE_OPTIONS
            ]
            found.sort(key=lambda item: -item[0])
            if found:
                items = ", ".join(
                    f"{html.escape(name, quote=False)} ({numbers.percent(v, lang)})"
                    for v, name, _ in found[:TOP_ITEMS]
                )
                lines.append(t("top", label=label, items=items))
    if problems:
        problems.sort(key=lambda pair: -pair[0])
        items = ", ".join(
            f"{html.escape(name, quote=False)} {numbers.percent(v, lang)}"
            for v, name in problems[:TOP_ITEMS]
        )
        lines.append(t("problems", items=items))
    return lines


def render_results(svc: Services, lang: str, results: Results) -> str:
    """The area's latest release: when it is from and why, the round, how many answered, the key
    figures, and the alliance's latest response."""

    def t(key: str, **params: object) -> str:
        return svc.text(lang, f"alliance.results.{key}", **params)

    table = results.table
    min_n = svc.settings.min_cell_size
    area = html.escape(results.area_name, quote=False)
    lines = [t("title", area=area), _round_line(svc, lang, results)]
    if table is None or results.as_of is None:
        lines.append(t("none_yet", min_n=min_n))
    else:
        started = table.cell("current", TOTAL, "respondents", "started")
        as_of = t("as_of", date=_moment(svc, lang, results.as_of))
        if started is None or not started.shown:
            lines.append(f"{as_of} {t('too_few', min_n=table.min_n)}")
        else:
            lines.append(f"{as_of} {t('responses', n=numbers.count(started.n or 0, lang))}")
        if results.shown_round is not None and results.shown_round.id != results.round_.id:
            shown = html.escape(results.shown_round.name, quote=False)
            lines.append(t("earlier_round", round=shown))
        if started is not None and started.shown:
            lines.append("")
            lines.extend(_figures(svc, lang, table))
    lines.append("")
    lines.append(t("next", min_n=min_n))
    if results.answered_since is not None:
        lines.append(
            t(
                "yours",
                date=numbers.day(results.answered_since.astimezone(svc.settings.tz).date(), lang),
            )
        )
    if results.response is not None:
        lines.append("")
        lines.append(
            t(
                "response",
                date=numbers.day(results.response.sent_at.astimezone(svc.settings.tz).date(), lang),
            )
        )
        lines.append(html.escape(results.response.text, quote=False))
        if not results.response.translated:
            lines.append(svc.text(lang, "responses.resident.untranslated"))
    lines.append("")
    lines.append(t("note"))
    return "\n".join(lines)


async def results_command(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """/results in a private chat (read only: nothing is stored)."""
    svc = services(context)
    user, message = update.effective_user, update.effective_message
    if user is None or message is None:
        return
    found = await svc.db.call(
        results_for_resident,
        svc.db,
        svc.resident_key(user.id),
        svc.clock.now(),
        areas=svc.areas,
        min_n=svc.settings.min_cell_size,
        tz=svc.settings.tz,
        catalogue=svc.catalogue,
    )
    code = (user.language_code or "").split("-")[0].lower()
    lang = found.language or (code if code in svc.catalogue.languages else "nl")
    if found.outcome == "results" and found.results is not None:
        text = render_results(svc, lang, found.results)
    elif found.outcome == "no_round" and found.area is not None:
        area = html.escape(found.area.name, quote=False)
        text = svc.text(lang, "alliance.results.none", area=area)
    else:
        text = svc.text(lang, "alliance.results.need_area")
    await reply(update, context, text)
