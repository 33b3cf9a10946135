"""A/B variants from one brief (issue #33, first part): the visuals once per concept and
placement, the brand layer set in type inside each safe zone with measured contrast, IDs in
the files and the exports, and the platforms' results read back into a verdict."""

from __future__ import annotations

import json
import re
import zipfile

import numpy as np
import pytest
from fastapi.testclient import TestClient
from PIL import Image, ImageOps

from enfoads.core import provenance
from enfoads.core.errors import InvalidInput
from enfoads.core.jobs import JobState
from enfoads.core.pipelines.variants import (
    BriefRequest,
    analyse,
    fraction,
    llm_lines,
    matrix,
    number,
    parse_code,
    read_results,
    safe_box,
)
from enfoads.core.studio import Studio

TIMEOUT = 900
BRIEF = {
    "product": "Café de Chiapas",
    "price": "9,90 €",
    "offer": "-20 % esta semana",
    "concepts": ["taza humeante sobre mesa de madera", "bolsa de café en un mercado"],
    "headlines": ["Despierta con sabor", "El café de la sierra", "Tostado esta semana"],
    "ctas": ["Compra ahora", "Pide el tuyo"],
    "placements": ["9:16", "1:1", "1.91:1"],
    "seed": 5,
}


@pytest.fixture
def studio(tiny_settings):
    with Studio(tiny_settings(language="es")) as st:
        st.start()
        yield st


@pytest.mark.slow
def test_a_brief_renders_every_variant_at_every_placement_with_the_copy_set_in_type(studio):
    from enfoads.server.app import create_app

    with TestClient(create_app(studio)) as c:
        queued = c.post("/api/briefs", json=BRIEF)
        assert queued.status_code == 202, queued.text
    done = studio.wait_job(queued.json()["job_id"], TIMEOUT)
    assert done.state is JobState.COMPLETED, done.error
    variants = done.result["variants"]
    assert len(variants) == 12  # 2 concepts × 3 headlines × 2 CTAs
    short = done.result["brief_id"].split("_")[1][:4]
    assert sorted(variants) == sorted(
        f"{short}-{c}{h}{k}" for c in (1, 2) for h in "ABC" for k in (1, 2)
    )
    images = [a for a in done.result_asset_ids if a.startswith("img_")]
    assert len(images) == 6 + 36  # each visual once per concept and placement, then 36 variants
    for variant_id, variant in variants.items():
        assert set(variant["files"]) == {"9:16", "1:1", "1.91:1"}
        for placement, asset_id in variant["files"].items():
            asset = studio.get_asset(asset_id)
            record = json.loads(Image.open(studio.asset_path(asset)).text["enfoads"])
            assert record["variant"] == variant_id and record["placement"] == placement
            assert asset.meta["headline"] == variant["headline"]
            x0, y0, x1, y1 = safe_box((asset.width, asset.height), placement)
            for layer in record["layers"]:  # every element inside the safe zone
                bx0, by0, bx1, by1 = layer["box"]
                assert x0 <= bx0 and y0 <= by0 and bx1 <= x1 and by1 <= y1, (placement, layer)
                if layer["role"] != "logo":
                    assert layer["contrast"] >= 4.5, layer  # measured on the pixels
            # nothing is drawn outside the safe zone: the visual's own pixels there
            visual = Image.open(studio.asset_path(asset.parents[0])).convert("RGB")
            if placement == "1.91:1":  # cut from the 16:9 visual before the type is set
                assert visual.size == (1344, 768) and (asset.width, asset.height) == (1344, 704)
                visual = ImageOps.fit(visual, (1344, 704), Image.Resampling.LANCZOS)
            visual = np.asarray(visual)
            drawn = np.asarray(Image.open(studio.asset_path(asset)).convert("RGB"))
            outside = np.ones(drawn.shape[:2], bool)
            outside[y0:y1, x0:x1] = False
            assert np.array_equal(visual[outside], drawn[outside])
            assert not np.array_equal(visual, drawn)  # and the type is there
    one = studio.get_asset(next(iter(variants.values()))["files"]["9:16"])
    said = studio.asset_provenance(one.id)  # the AI visual as its parent, signed
    assert said["state"] == "trusted" and said["ingredients"][0]["relationship"] == "parentOf"
    brief = json.loads(studio.asset_bytes(done.result["brief_id"]))
    assert (
        brief["variants"] == variants and studio.get_asset(done.result["brief_id"]).kind == "brief"
    )
    # the kept variants export with their IDs and copy beside each file (bulk upload)
    kept = sorted(variants)[:2]
    chosen = [variants[v]["files"][p] for v in kept for p in ("9:16", "1:1")]
    landscape = variants[kept[0]]["files"]["1.91:1"]
    exported = studio.wait_job(
        studio.export_campaign(asset_ids=[*chosen, landscape], platforms=["meta", "google"]).id,
        TIMEOUT,
    )
    assert exported.state is JobState.COMPLETED, exported.error
    said = " ".join(exported.result["notices"])  # 4:5 would cut the copy: refused, not cut
    assert "No exportado (meta/feed-4x5)" in said and "cortaría su texto" in said
    google = next(e for e in exported.result["exports"] if e["platform"] == "google")
    wide = next(f for f in google["files"] if f["placement"] == "google/landscape-1.91x1")
    assert wide["source_asset_id"] == landscape and wide["passed"], wide  # scaled, not cut
    assert all(f["passed"] for e in exported.result["exports"] for f in e["files"])
    archive = zipfile.ZipFile(studio.asset_path(exported.result["exports"][0]["asset_id"]))
    rows = json.loads(archive.read("manifest.json"))["files"]
    assert {r["variant"] for r in rows} == set(kept)
    rows = [r for r in rows if r["source_asset_id"] in chosen]
    assert len(rows) == 4  # 2 × (9:16, 1:1)
    assert {r["placement"] for r in rows} == {"meta/stories-9x16", "meta/feed-1x1"}
    assert all(r["headline"] in BRIEF["headlines"] for r in rows)
    assert "variant,headline,cta" in archive.read("files.csv").decode().splitlines()[0]
    story = next(r for r in rows if r["placement"] == "meta/stories-9x16")
    archive.extract(story["file"], studio.settings.data_dir / "out")
    signed = provenance.read(studio.settings.data_dir / "out" / story["file"], "jpg")
    assert signed.state == "valid" and story["variant"] in signed.ingredients[0]["title"]


def test_a_headline_that_cannot_fit_is_refused_before_anything_is_queued(studio):
    long = (
        "Descubre el auténtico café de altura cultivado a la sombra en las montañas de "
        "Chiapas por familias que lo tuestan cada semana para tu desayuno"
    )
    with pytest.raises(InvalidInput) as refused:
        studio.submit("render_variants", {**BRIEF, "headlines": [long, "Corto"]})
    said = refused.value.message("es")
    assert "no cabe en 9:16" in said and "acórtalo" in said and "headlines[0]" in said
    with pytest.raises(InvalidInput) as over:
        studio.submit(
            "render_variants", {**BRIEF, "headlines": ["Hola", "x" * 40], "platforms": ["google"]}
        )
    assert over.value.field == "headlines[1]"  # Google's 30-character headlines
    with pytest.raises(InvalidInput) as style:  # the image pipeline's styles, no other
        studio.submit("render_variants", {**BRIEF, "style": "vaporwave"})
    assert style.value.field == "style"
    assert studio.list_jobs() == []


def make_brief(studio, ids):
    record = {
        "brief": {"product": "Café"},
        "variants": {
            v: {"levels": {"concept": c, "headline": h, "cta": k}} for v, (c, h, k) in ids.items()
        },
    }
    return studio.assets.add_bytes(json.dumps(record).encode(), "brief", ext="json")


def test_results_from_meta_name_the_winner_and_a_tie_stays_undecided(studio):
    ids = {"ab12-1A1": (1, "A", 1), "ab12-1B1": (1, "B", 1), "ab12-1C1": (1, "C", 1)}
    brief = make_brief(studio, ids)
    # Meta Ads Manager in Spanish: semicolons, thousands with a dot, decimals with a comma
    meta = (
        "Nombre del anuncio;Impresiones;Clics en el enlace;Resultados;Importe gastado (EUR)\n"
        "Café verano ab12-1A1;10.000;200;12;35,50\n"
        "Café verano ab12-1B1;10.000;420;30;36,10\n"
        "Café verano ab12-1C1;10.000;210;11;34,90\n"
        "Otra campaña;5.000;90;1;10,00\n"
    )
    done = studio.wait_job(
        studio.submit("import_results", {"brief_id": brief.id, "csv": meta}).id, 120
    )
    assert done.state is JobState.COMPLETED, done.error
    report = done.result
    assert report["winner"] == "ab12-1B1" and report["skipped_rows"] == 1
    best = {r["variant"]: r for r in report["variants"]}
    assert best["ab12-1B1"]["impressions"] == 10000 and best["ab12-1B1"]["clicks"] == 420
    assert best["ab12-1B1"]["p_best_ctr"] > 0.99
    assert "La variante ab12-1B1 gana con 100 % de probabilidad" in report["verdict"]
    assert "El titular B gana" in report["verdict"]
    chart = studio.get_asset(report["chart_asset_id"])
    assert chart.ext == "png" and chart.part_of == brief.id
    # a tie: nobody wins, and the report says to keep testing
    google = (
        "Informe de anuncios\n1 nov 2026 - 30 nov 2026\n"
        "Ad,Impr.,Clicks,Conversions,Cost\n"
        '"ab12-1A1 anuncio","1,000",30,2,"12.50"\n'
        '"ab12-1B1 anuncio","1,000",31,2,"12.40"\n'
        '"ab12-1C1 anuncio","1,000",30,2,"12.60"\n'
    )
    tie = studio.wait_job(
        studio.submit("import_results", {"brief_id": brief.id, "csv": google}).id, 120
    )
    assert tie.state is JobState.COMPLETED and tie.result["winner"] is None
    assert "Aún no hay ganadora clara" in tie.result["verdict"]
    assert "El titular aún no se distingue" in tie.result["verdict"]
    none = studio.wait_job(
        studio.submit(
            "import_results", {"brief_id": brief.id, "csv": "Ad,Impr.,Clicks\nx,1,1\n"}
        ).id,
        120,
    )
    assert none.state is JobState.FAILED and "ninguna fila nombra una variante" in none.error


def test_numbers_read_as_reports_write_them():
    assert [
        number(s) for s in ("1.234", "1,234", "12,5", "€ 3.40", "1.234.567", "2,345.60", "")
    ] == [1234, 1234, 12.5, 3.4, 1234567, 2345.6, 0]
    rows, skipped = read_results("Ad name,Impressions,Clicks\nX-1A1 foo,100,5\n", ["X-1A1"])
    assert rows == {"X-1A1": {"impressions": 100, "clicks": 5, "conversions": 0, "spend": 0}}
    report = analyse(
        {
            "a": {"impressions": 0, "clicks": 0, "conversions": 0, "spend": 0},
            "b": {"impressions": 0, "clicks": 0, "conversions": 0, "spend": 0},
        },
        {
            "a": {"levels": {"headline": "A", "concept": 1, "cta": 1}},
            "b": {"levels": {"headline": "B", "concept": 1, "cta": 1}},
        },
        "en",
    )
    assert report["winner"] is None and re.search(r"No clear winner yet", report["verdict"])


def test_results_post_to_the_briefs_own_path_and_the_body_limit_follows_the_route(studio):
    from enfoads.server.app import create_app

    brief = make_brief(studio, {"cd34-1A1": (1, "A", 1), "cd34-1B1": (1, "B", 1)})
    rows = "".join(
        f"cd34-1{'AB'[i % 2]}1 anuncio {i},1000,{20 + 20 * (i % 2)}\n" for i in range(40)
    )
    csv = "Ad,Impr.,Clicks\n" + rows
    with TestClient(create_app(studio)) as c:
        queued = c.post(f"/api/briefs/{brief.id}/results", json={"csv": csv})
        assert queued.status_code == 202, queued.text
        schema = c.get("/openapi.json").json()["paths"]
        assert "/api/briefs/{brief_id}/results" in schema
        body = schema["/api/briefs/{brief_id}/results"]["post"]["requestBody"]
        assert "brief_id" not in json.dumps(body)  # the path carries it, not the body
        # an unknown brief is named; a missing csv is the field's error; no job queued for them
        gone = c.post("/api/briefs/brief_0000000000/results", json={"csv": csv})
        assert gone.status_code == 404 and "brief_0000000000" in gone.json()["message"]
        empty = c.post(f"/api/briefs/{brief.id}/results", json={})
        assert empty.status_code == 422 and "csv" in empty.text
        # a 2 MB report is a file's worth at this route; the same body elsewhere is refused
        big = {"csv": csv + "x,1,1\n" * 350_000}
        assert c.post(f"/api/briefs/{brief.id}/results", json=big).status_code == 202
        assert c.post("/api/jobs/propose_copy", json={**big, "product": "x"}).status_code == 413
    done = studio.wait_job(queued.json()["job_id"], 120)
    assert done.state is JobState.COMPLETED, done.error
    assert done.result["winner"] == "cd34-1B1"  # 40 % more clicks over 20 000 impressions
    assert len(studio.list_jobs()) == 2


def test_copy_proposals_come_from_the_templates_in_the_users_language(studio):
    job = studio.submit(
        "propose_copy",
        {"product": "Café de Chiapas", "price": "9,90 €", "offer": "-20 %", "tone": "urgent"},
    )
    done = studio.wait_job(job.id, 120)
    assert done.state is JobState.COMPLETED, done.error
    said = done.result
    assert said["engine"] == "rules" and len(said["headlines"]) == 4 and len(said["ctas"]) == 3
    assert "-20 %: solo esta semana" in said["headlines"]  # the urgent tone's, with the offer
    assert "Café de Chiapas a 9,90 €" in said["headlines"]
    assert said["ctas"][0] == "Compra ya"
    assert all(len(h) <= 40 for h in said["headlines"])
    # no offer, no price: no template that needs them; the proposals fit a brief as they are
    plain = studio.wait_job(
        studio.submit("propose_copy", {"product": "Velas de soja", "tone": "premium"}).id, 120
    ).result
    assert not any("%" in h or "€" in h for h in plain["headlines"])
    brief = {**BRIEF, "headlines": plain["headlines"], "ctas": plain["ctas"]}
    assert studio.capabilities.request("render_variants", brief).headlines == plain["headlines"]
    studio.update_settings(language="en")
    english = studio.wait_job(
        studio.submit("propose_copy", {"product": "Soy candles", "tone": "playful"}).id, 120
    ).result
    assert "Your new favourite" in english["headlines"] and english["ctas"][0] == "I want it!"


def test_copy_proposals_from_a_tiny_local_llm_or_the_templates_with_a_notice(tmp_path):
    from enfoads.core.settings import load_settings
    from enfoads.testing.sdxl import build_tiny_llm

    llm = build_tiny_llm(tmp_path / "models")
    settings = load_settings(
        data_dir=tmp_path / "data", device="cpu", language="es", prompt_llm_model=str(llm)
    )
    with Studio(settings) as st:
        st.start()
        done = st.wait_job(st.submit("propose_copy", {"product": "Café"}).id, 300)
        assert done.state is JobState.COMPLETED, done.error
        said = done.result  # random weights: whatever it says is used only when it is copy
        assert said["engine"] in ("llm", "rules") and len(said["headlines"]) == 4
        if said["engine"] == "rules":
            assert "no dio titulares utilizables" in said["notices"][0]
        models = {m["name"]: m for m in st.gpu_status()["models"]}
        assert models["prompt-llm"]["loads"] == 1  # through the model manager
        rules = st.wait_job(
            st.submit("propose_copy", {"product": "Café", "use_llm": False}).id, 120
        ).result
        assert rules["engine"] == "rules" and not rules["notices"]
    assert llm_lines("1. H: Despierta con sabor\nC: Compra ya\n- «Otro titular»\n###") == (
        ["Despierta con sabor", "Otro titular"],
        ["Compra ya"],
    )


def test_a_fractional_design_keeps_every_level_and_bad_codes_are_named(studio):
    codes = fraction(2, 3, 2)
    assert len(codes) == 6 and len(set(codes)) == 6  # half of the 12
    for position, factor in ((0, "concept"), (1, "headline"), (2, "cta")):
        seen = {c[position] for c in codes}
        assert len(seen) == {"concept": 2, "headline": 3, "cta": 2}[factor]
    two = fraction(2, 3, 2, 2)
    assert {c[-1] for c in two} == {"1", "2"} and all(c[3] == "-" for c in two)
    # the CTA and the palette are not the same split
    assert {(c[2], c[-1]) for c in two} == {("1", "1"), ("1", "2"), ("2", "1"), ("2", "2")}
    request = BriefRequest(**BRIEF)
    assert len(matrix(request)) == 12 and parse_code("2C2", request) == (1, 2, 1, 0)
    for bad in ("3A1", "1D1", "1A1-2", "x"):
        assert parse_code(bad, request) is None
    with pytest.raises(InvalidInput) as refused:
        studio.submit("render_variants", {**BRIEF, "combinations": ["1A1", "1D1"]})
    assert refused.value.field == "combinations[1]" and "1D1" in refused.value.message("es")
    assert studio.list_jobs() == []


def test_two_palettes_set_the_button_in_each_and_the_ids_say_which(studio):
    kit = studio.save_brand_kit(colours=["#0B3D91", "#FFD400", "#7A1F5C", "#00A86B"])
    assert kit["colours"][2] == "#7A1F5C"
    brief = {
        **BRIEF,
        "concepts": BRIEF["concepts"][:1],
        "headlines": BRIEF["headlines"][:2],
        "ctas": BRIEF["ctas"][:1],
        "placements": ["1:1"],
        "palettes": 2,
        "combinations": ["1A1-1", "1B1-2"],  # trimmed by the user: 2 of the 4
    }
    done = studio.wait_job(studio.submit("render_variants", brief).id, TIMEOUT)
    assert done.state is JobState.COMPLETED, done.error
    variants = done.result["variants"]
    short = done.result["brief_id"].split("_")[1][:4]
    assert sorted(variants) == [f"{short}-1A1-1", f"{short}-1B1-2"]
    assert variants[f"{short}-1B1-2"]["levels"] == {
        "concept": 1,
        "headline": "B",
        "cta": 1,
        "palette": 2,
    }
    for variant_id, accent in (
        (f"{short}-1A1-1", (255, 212, 0)),
        (f"{short}-1B1-2", (0, 168, 107)),
    ):
        asset = studio.get_asset(variants[variant_id]["files"]["1:1"])
        button = next(layer for layer in asset.meta["layers"] if layer["role"] == "cta")
        x0, y0, x1, y1 = button["box"]
        pixels = np.asarray(Image.open(studio.asset_path(asset)).convert("RGB"))[y0:y1, x0:x1]
        share = np.mean(np.all(np.abs(pixels.astype(int) - accent) <= 2, axis=-1))
        assert share > 0.5, (variant_id, share)  # the button is the palette's accent
    report = analyse(
        {
            v: {
                "impressions": 10000,
                "clicks": 100 + 300 * (v.endswith("-2")),
                "conversions": 0,
                "spend": 0,
            }
            for v in variants
        },
        variants,
        "es",
    )
    assert "La paleta 2 gana" in report["verdict"]
