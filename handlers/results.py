"""/results for residents: their area's latest published figures, short, in their language."""

from __future__ import annotations

import html

from telegram import Update
from telegram.ext import ContextTypes

from digests import TOTAL
from digests.model import PublishedTable
from digests.suppression import yes_option
from handlers.context import services
from handlers.replies import reply
from locales import numbers
from usecases.resident_results import Results, results_for_resident
from usecases.services import Services

TOP_ITEMS = 3


def render_results(svc: Services, lang: str, results: Results) -> str:
    """A few key figures: respondents, grade means, yes shares, the most mentioned nuisances."""
    table: PublishedTable = results.table
    tz = svc.settings.tz

    def t(key: str, **params: object) -> str:
        return svc.text(lang, f"alliance.results.{key}", **params)

    lines = [
        t("title", area=html.escape(table.area_name, quote=False)),
        t(
            "as_of",
            round=html.escape(table.round_name, quote=False),
            date=numbers.day(results.as_of.astimezone(tz).date(), lang),
        ),
    ]
    started = table.cell("current", TOTAL, "respondents", "started")
    if started is None or not started.shown:
        lines.append(t("too_few", min_n=table.min_n))
        return "\n".join(lines)
    lines.append(t("responses", n=numbers.count(started.n or 0, lang)))
    lines.append("")
    for q in table.questions:
        label = html.escape(q.label_in(lang), quote=False)
        if q.type == "grade":
            cell = table.cell("current", TOTAL, q.id, "mean")
            if cell is None:
                continue
            if not cell.shown or cell.value is None:
                lines.append(t("hidden", label=label))
            else:
                lines.append(
                    t(
                        "mean",
                        label=label,
                        value=numbers.number(cell.value, lang),
                        n=numbers.count(cell.n or 0, lang),
                    )
                )
        elif q.type == "yesno":
            cell = table.cell("current", TOTAL, q.id, "share:" + yes_option(q))
            if cell is None:
                continue
            if not cell.shown or cell.value is None:
                lines.append(t("hidden", label=label))
            else:
                share = numbers.percent(cell.value, lang)
                lines.append(
                    t("share", label=label, value=share, n=numbers.count(cell.n or 0, lang))
                )
        elif q.type == "multi":
            shares = []
            for oid in q.option_ids:
                cell = table.cell("current", TOTAL, q.id, "share:" + oid)
                if cell is None or not cell.shown or cell.value is None or oid in ("geen", "none"):
                    continue
                shares.append((cell.value, q.option_label(oid, lang)))
            shares.sort(key=lambda pair: -pair[0])
            if shares:
                items = ", ".join(
                    f"{html.escape(name, quote=False)} ({numbers.percent(v, lang)})"
                    for v, name in shares[:TOP_ITEMS]
                )
                lines.append(t("top", label=label, items=items))
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
