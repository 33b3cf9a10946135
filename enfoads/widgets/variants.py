"""Variantes A/B: a brief (product, copy to test, visual concepts), its variants on a board to
keep or drop per placement and factor, the kept ones to Publicar, and the platform's results
read back into a verdict (``render_variants``, ``propose_copy``, ``import_results``)."""

from __future__ import annotations

import html
import json
from collections.abc import Callable
from typing import Any

import ipywidgets as w

from enfoads.core.api import StudioAPI
from enfoads.core.errors import EnfoadsError
from enfoads.core.i18n import CATALOG, t
from enfoads.widgets.ad_creator import PlacementToggles
from enfoads.widgets.common import (
    JobProgress,
    Message,
    close_tree_children,
    file_upload,
    show_file_name,
    thumbnail,
)
from enfoads.widgets.compat import uploaded_files

PLACEMENTS = ("9:16", "1:1", "4:5", "1.91:1", "16:9", "2:3")
FACTORS = ("concept", "headline", "cta", "palette")
BRIEFS_LISTED = 50


def lines(text: str) -> list[str]:
    return [line.strip() for line in text.splitlines() if line.strip()]


STYLE = {"description_width": "initial"}


def text_box(key: str, lang: str, placeholder: str = "") -> w.Text:
    return w.Text(
        description=t(f"ui.variants.{key}", lang),
        placeholder=placeholder,
        layout=w.Layout(width="95%", max_width="640px"),
        style=STYLE,
    )


def area(key: str, lang: str, height: str) -> w.Textarea:
    return w.Textarea(
        description=t(f"ui.variants.{key}", lang),
        placeholder=t(f"ui.variants.{key}.placeholder", lang),
        layout=w.Layout(width="95%", max_width="640px", height=height),
        style=STYLE,
    )


class VariantsPanel(w.VBox):
    def __init__(self, studio: StudioAPI, on_export: Callable[[list[str]], Any] | None = None):
        self.studio = studio
        self.on_export = on_export
        lang = self.lang = studio.settings.language
        self._form(lang, studio.options("variants"))
        # the board: a stored brief's variants, filtered, kept or dropped
        self.briefs = w.Dropdown(
            description=t("ui.variants.saved", lang),
            style=STYLE,
            layout=w.Layout(width="420px", max_width="100%"),
        )
        self._listing = False
        self.briefs.observe(lambda _c: self._listing or self.open_brief(self.briefs.value), "value")
        self.board = Board(studio, self._export)
        # results
        self.results_file = file_upload(t("ui.variants.results_csv", lang), ".csv,text/csv")
        self.results_file.observe(lambda _c: self._chosen_csv(), "value")
        self.import_button = w.Button(description=t("ui.variants.import", lang), icon="bar-chart")
        self.import_button.on_click(lambda _b: self.start_import())
        self.results_message = Message()
        self.results_progress = JobProgress(studio, self._imported)
        self.results = w.VBox()
        self._csv: str | None = None
        self.report: dict[str, Any] | None = None
        super().__init__(
            [
                w.HTML(f"<p>{html.escape(t('ui.variants.intro', lang))}</p>"),
                self.product,
                w.HBox([self.price, self.offer]),
                w.HBox([self.audience, self.tone]),
                self.concepts,
                self.headlines,
                self.ctas,
                w.HBox([self.propose, self.copy_message]),
                self.copy_progress,
                w.Label(t("ui.placements", lang)),
                self.placements,
                self.palettes,
                self.design,
                self.count,
                self.run,
                self.message,
                self.progress,
                w.HTML(f"<h4>{html.escape(t('ui.variants.board', lang))}</h4>"),
                self.briefs,
                self.board,
                w.HTML(f"<h4>{html.escape(t('ui.variants.results', lang))}</h4>"),
                w.HTML(f"<p>{html.escape(t('ui.variants.results_help', lang))}</p>"),
                w.HBox([self.results_file, self.import_button]),
                self.results_message,
                self.results_progress,
                self.results,
            ]
        )
        self.show_count()
        self.refresh()  # and when its tab opens (``StudioApp``), never on each vault event

    def _form(self, lang: str, options: dict[str, Any]) -> None:
        """The brief's fields, the copy proposals and the render button."""
        studio = self.studio
        self.product = text_box("product", lang, "Café de Chiapas")
        self.price = text_box("price", lang, "9,90 €")
        self.offer = text_box("offer", lang, "-20 % esta semana")
        self.audience = text_box("audience", lang)
        self.tone = w.Dropdown(
            options=[(t(f"ui.variants.tone.{k}", lang), k) for k in options["tones"]],
            description=t("ui.variants.tone", lang),
            style=STYLE,
        )
        self.concepts = area("concepts", lang, "70px")
        self.headlines = area("headlines", lang, "90px")
        self.ctas = area("ctas", lang, "70px")
        self.propose = w.Button(description=t("ui.variants.propose", lang), icon="magic")
        self.propose.on_click(lambda _b: self.start_proposals())
        named = [
            (f"{a} · {t(f'placement.{a}', lang)}" if f"placement.{a}" in CATALOG else a, a)
            for a in PLACEMENTS
        ]
        self.placements = PlacementToggles(named, ("9:16", "1:1"))
        self.palettes = w.Checkbox(
            description=t("ui.variants.palettes", lang),
            indent=False,
            layout=w.Layout(width="95%", max_width="640px"),
        )
        self.design = w.Dropdown(
            options=[
                (t("ui.variants.full", lang), "full"),
                (t("ui.variants.fraction", lang), "fraction"),
            ],
            value="full",
            description=t("ui.variants.design", lang),
            style=STYLE,
            layout=w.Layout(width="420px", max_width="100%"),
        )
        self.count = w.HTML()
        for widget in (self.concepts, self.headlines, self.ctas, self.palettes, self.design):
            widget.observe(lambda _c: self.show_count(), "value")
        for button in self.placements.buttons.values():
            button.observe(lambda _c: self.show_count(), "value")
        self.run = w.Button(
            description=t("ui.variants.run", lang), button_style="primary", icon="th"
        )
        self.run.on_click(lambda _b: self.start())
        self.message = Message()
        self.progress = JobProgress(studio, self._rendered)
        self.progress.on_retry = lambda: setattr(self.run, "disabled", True)
        self.copy_message = Message()
        self.copy_progress = JobProgress(studio, self._proposed)
        self.copy_progress.layout.display = "none"

    # -- the brief ----------------------------------------------------------------------
    def brief(self) -> dict[str, Any]:
        """The form as a ``render_variants`` request (the engine checks it)."""
        concepts, headlines, ctas = (
            lines(a.value) for a in (self.concepts, self.headlines, self.ctas)
        )
        palettes = 2 if self.palettes.value else 1
        body: dict[str, Any] = {
            "product": self.product.value.strip(),
            "price": self.price.value.strip(),
            "offer": self.offer.value.strip(),
            "audience": self.audience.value.strip(),
            "tone": self.tone.value,
            "concepts": concepts,
            "headlines": headlines,
            "ctas": ctas,
            "placements": list(self.placements.value),
            "palettes": palettes,
        }
        if self.design.value == "fraction" and concepts and headlines and ctas:
            from enfoads.core.pipelines.variants import fraction

            body["combinations"] = fraction(
                min(len(concepts), 3), min(len(headlines), 4), min(len(ctas), 3), palettes
            )
        return body

    def show_count(self) -> None:
        body = self.brief()
        full = len(body["concepts"]) * len(body["headlines"]) * len(body["ctas"])
        variants = len(body.get("combinations") or ()) or full * body["palettes"]
        placements = len(body["placements"])
        self.count.value = html.escape(
            t(
                "ui.variants.count",
                self.lang,
                variants=variants,
                placements=placements,
                images=variants * placements,
            )
        )

    def start(self) -> None:
        body = self.brief()
        self.progress.start(
            lambda: self.studio.submit("render_variants", body), self.message, self.run
        )

    def _rendered(self, job: dict[str, Any]) -> None:
        self.run.disabled = False
        if job["state"] == "completed":
            self.refresh()
            self.briefs.value = job["result"]["brief_id"]  # opens it on the board

    def start_proposals(self) -> None:
        body = {
            "product": self.product.value.strip(),
            "price": self.price.value.strip(),
            "offer": self.offer.value.strip(),
            "audience": self.audience.value.strip(),
            "tone": self.tone.value,
        }
        self.copy_progress.layout.display = ""
        self.copy_progress.start(
            lambda: self.studio.submit("propose_copy", body), self.copy_message, self.propose
        )

    def _proposed(self, job: dict[str, Any]) -> None:
        """The proposals replace the empty lines only: what the user wrote stays first."""
        self.propose.disabled = False
        if job["state"] != "completed":
            return
        said = job["result"]
        for box, proposed, most in (
            (self.headlines, said["headlines"], 4),
            (self.ctas, said["ctas"], 3),
        ):
            mine = lines(box.value)
            box.value = "\n".join([*mine, *(p for p in proposed if p not in mine)][:most])
        self.copy_message.show(" ".join(said.get("notices") or []), "info")
        self.copy_progress.layout.display = "none"

    # -- stored briefs and the board ----------------------------------------------------
    def refresh(self) -> None:
        """The stored briefs, newest first (the open one stays open)."""
        page = self.studio.list_assets(kind="brief", limit=BRIEFS_LISTED)
        options = [(t("ui.choose", self.lang), "")] + [
            (f"{a.name or a.id} · {a.id[-6:]}"[:70], a.id) for a in page.items
        ]
        if tuple(options) == tuple(self.briefs.options):
            return
        current = self.briefs.value
        self._listing = True
        try:
            self.briefs.options = options
            self.briefs.value = current if current in {v for _, v in options} else ""
        finally:
            self._listing = False

    def open_brief(self, brief_id: str | None) -> None:
        close_tree_children(self.results)
        self.results.children = ()
        self.report = None
        if not brief_id:
            self.board.show(None)
            return
        try:
            record = json.loads(self.studio.asset_bytes(brief_id))
            self.board.show(record)
        except EnfoadsError as exc:  # deleted meanwhile
            self.message.show_error(exc, self.lang)
            self.board.show(None)
        except (ValueError, KeyError, TypeError):  # not a brief this studio wrote
            self.message.show(t("ui.variants.bad_brief", self.lang), "error")
            self.board.show(None)

    def _export(self, asset_ids: list[str]) -> None:
        if self.on_export is not None:
            self.on_export(asset_ids)

    # -- results ------------------------------------------------------------------------
    def _chosen_csv(self) -> None:
        files = uploaded_files(self.results_file)
        if not files:
            return
        name, content = files[0]
        self._csv = None
        try:
            text = content.decode("utf-8-sig")
        except UnicodeDecodeError:
            text = content.decode("cp1252", errors="replace")  # Excel's Spanish CSVs
        self._csv = text
        show_file_name(self.results_file, name)
        self.results_message.show("")

    def start_import(self) -> None:
        brief_id = self.briefs.value
        if not brief_id:
            self.results_message.show(t("ui.variants.choose_brief", self.lang), "error")
            return
        if not self._csv:
            self.results_message.show(t("ui.variants.choose_csv", self.lang), "error")
            return
        body = {"brief_id": brief_id, "csv": self._csv}
        self.results_progress.start(
            lambda: self.studio.submit("import_results", body),
            self.results_message,
            self.import_button,
        )

    def _imported(self, job: dict[str, Any]) -> None:
        self.import_button.disabled = False
        if job["state"] == "completed":
            self.show_report(job["result"])

    def show_report(self, report: dict[str, Any]) -> None:
        """The verdict, each variant's numbers and probability of being best, the chart, and
        a way to start the next brief from what won."""
        lang = self.lang
        self.report = report
        rows = "".join(
            "<tr>"
            + "".join(
                f"<td style='padding:2px 8px'>{html.escape(str(c))}</td>"
                for c in (
                    ("★ " if r["variant"] == report.get("winner") else "") + r["variant"],
                    int(r["impressions"]),
                    int(r["clicks"]),
                    f"{100 * r['ctr']:.2f} %",
                    f"{100 * r['p_best_ctr']:.0f} %",
                )
            )
            + "</tr>"
            for r in report["variants"]
        )
        head = "".join(
            f"<th style='padding:2px 8px;text-align:left'>{html.escape(t(f'ui.variants.col.{c}', lang))}</th>"
            for c in ("variant", "impressions", "clicks", "ctr", "p_best")
        )
        blocks: list[w.Widget] = [
            w.HTML(f"<p><b>{html.escape(report['verdict'])}</b></p>"),
            w.HTML(f"<table><tr>{head}</tr>{rows}</table>"),
        ]
        if report.get("chart_asset_id"):
            try:
                chart = self.studio.asset_bytes(report["chart_asset_id"])
                blocks.append(w.Image(value=chart, format="png", layout=w.Layout(max_width="100%")))
            except EnfoadsError:
                pass
        again = w.Button(description=t("ui.variants.again", lang), icon="repeat")
        again.on_click(lambda _b: self.start_from_winners())
        blocks.append(again)
        close_tree_children(self.results)
        self.results.children = tuple(blocks)

    def start_from_winners(self) -> None:
        """The form filled from the open brief, each factor's most likely best level first."""
        record = self.board.record
        if record is None:
            return
        brief = record["brief"]
        best = {
            factor: max(levels, key=lambda lv: lv["p_best_ctr"])["level"]
            for factor, levels in ((self.report or {}).get("factors") or {}).items()
        }

        def first(items: list[str], factor: str, index_of: Callable[[str], int]) -> list[str]:
            if factor not in best:
                return items
            i = index_of(best[factor])
            return [items[i], *items[:i], *items[i + 1 :]] if 0 <= i < len(items) else items

        self.product.value = brief.get("product", "")
        self.price.value = brief.get("price", "")
        self.offer.value = brief.get("offer", "")
        self.audience.value = brief.get("audience", "")
        if brief.get("tone") in {v for _, v in self.tone.options}:
            self.tone.value = brief["tone"]
        self.concepts.value = "\n".join(
            first(brief.get("concepts", []), "concept", lambda lv: int(lv) - 1)
        )
        self.headlines.value = "\n".join(
            first(brief.get("headlines", []), "headline", lambda lv: "ABCD".index(lv))
        )
        self.ctas.value = "\n".join(first(brief.get("ctas", []), "cta", lambda lv: int(lv) - 1))
        self.placements.value = tuple(brief.get("placements", ("1:1",)))
        self.message.show(t("ui.variants.from_winners", self.lang), "info")


class Board(w.VBox):
    """A brief's variants in a grid for one placement, filtered by factor level; each kept or
    dropped; the kept ones' files (every placement) to Publicar."""

    def __init__(self, studio: StudioAPI, on_export: Callable[[list[str]], None]):
        self.studio = studio
        self.on_export = on_export
        lang = self.lang = studio.settings.language
        self.record: dict[str, Any] | None = None
        self.kept: set[str] = set()
        self.placement = w.Dropdown(description=t("ui.variants.placement", lang))
        self.filters = {
            f: w.Dropdown(
                description=t(f"ui.variants.factor.{f}", lang), layout=w.Layout(width="auto")
            )
            for f in FACTORS
        }
        for dropdown in (self.placement, *self.filters.values()):
            dropdown.observe(lambda _c: self._shown or self.draw(), "value")
        self._shown = False
        self.grid = w.Box()
        self.grid.add_class("enfoads-vault-grid")
        self.summary = w.HTML()
        self.export = w.Button(
            description=t("ui.variants.export", lang), icon="upload", button_style="success"
        )
        self.export.on_click(lambda _b: self.on_export(self.kept_files()))
        self.cards: dict[str, w.Widget] = {}
        super().__init__([])

    def show(self, record: dict[str, Any] | None) -> None:
        """Open a brief's record (None: nothing open)."""
        self.record = record
        if record is None:
            close_tree_children(self.grid)
            self.grid.children = ()
            self.children = ()
            return
        variants = record["variants"]
        self.kept = set(variants)
        lang = self.lang
        placements = record["brief"].get("placements") or sorted(
            {p for v in variants.values() for p in v["files"]}
        )
        self._shown = True
        try:
            self.placement.options = [(p, p) for p in placements]
            self.placement.value = placements[0]
            for factor, dropdown in self.filters.items():
                levels = sorted({str(v["levels"].get(factor, 1)) for v in variants.values()})
                dropdown.options = [(t("ui.variants.all", lang), "")] + [(lv, lv) for lv in levels]
                dropdown.value = ""
                dropdown.layout.display = "" if len(levels) > 1 else "none"
        finally:
            self._shown = False
        self.children = (
            w.HBox([self.placement, *self.filters.values()]),
            self.grid,
            w.HBox([self.export, self.summary]),
        )
        self.draw()

    def visible(self) -> list[str]:
        """The variants the filters leave, in ID order."""
        chosen = {f: d.value for f, d in self.filters.items() if d.value}
        return [
            v
            for v, variant in sorted((self.record or {}).get("variants", {}).items())
            if all(str(variant["levels"].get(f, 1)) == lv for f, lv in chosen.items())
        ]

    def draw(self) -> None:
        if self.record is None:
            return
        placement = self.placement.value
        cards = []
        for variant_id in self.visible():
            variant = self.record["variants"][variant_id]
            asset_id = variant["files"].get(placement)
            if asset_id is None:
                continue
            try:
                picture = thumbnail(self.studio, asset_id, "100%")
            except (EnfoadsError, OSError):
                picture = w.Label(t("ui.variants.missing", self.lang))
            keep = w.Checkbox(
                value=variant_id in self.kept,
                description=t("ui.variants.keep", self.lang),
                indent=False,
            )
            keep.observe(lambda c, v=variant_id: self._keep(v, c["new"]), "value")
            label = w.HTML(
                f"<b>{html.escape(variant_id)}</b><br>{html.escape(variant['headline'])}"
                f" · {html.escape(variant['cta'])}",
                layout=w.Layout(overflow="hidden"),
            )
            card = w.VBox([picture, label, keep], layout=w.Layout(width="100%"))
            card.add_class("enfoads-scene")
            card.variant_id = variant_id
            cards.append(card)
        close_tree_children(self.grid)
        self.grid.children = tuple(cards)
        self._count()

    def _keep(self, variant_id: str, keep: bool) -> None:
        (self.kept.add if keep else self.kept.discard)(variant_id)
        self._count()

    def _count(self) -> None:
        total = len((self.record or {}).get("variants", {}))
        self.summary.value = html.escape(
            t("ui.variants.kept", self.lang, kept=len(self.kept), total=total)
        )
        self.export.disabled = not self.kept

    def kept_files(self) -> list[str]:
        """Every placement's file of each kept variant."""
        variants = (self.record or {}).get("variants", {})
        return [a for v in sorted(self.kept) for a in variants[v]["files"].values()]
