"""The managers' overview and model health pages end to end: ``telcoml console`` on the trained world,
headless Chromium through Playwright (``tests/serving/conftest.py``, ``tests/browser.py``).

The overview's counts are checked against the batch file (``serving.batch.score_province`` writes
what the CRM receives) and the offline store's snapshot; model health against the registry.
"""

from __future__ import annotations

import httpx
import pandas as pd
import pytest

from serving.batch import score_province
from serving.champions import load_champions
from tests.browser import sign_in

pytestmark = [pytest.mark.slow]


@pytest.fixture(scope="module")
def crm_files(trained_world, tmp_path_factory) -> pd.DataFrame:
    """Every customer of the latest month as the batch file grades them, both provinces."""
    s, month = trained_world.settings, trained_world.months[-1]
    models = load_champions(s)
    out = tmp_path_factory.mktemp("crm")
    frames = [
        pd.read_parquet(score_province(s, models, p, month, output_dir=out, record=False).parquet)
        for p in ("GD", "HE")
    ]
    return pd.concat(frames, ignore_index=True)


def grade_counts(tab) -> dict[int, int]:
    rows = tab.locator("#credit-overview tr[data-grade]")
    return {
        int(code): int(rows.nth(i).locator("td.count").inner_text())
        for i in range(rows.count())
        if (code := rows.nth(i).get_attribute("data-grade")) != "total"
    }


@pytest.mark.browser
def test_a_manager_reads_grades_by_province_and_drills_down(console, page, keys, crm_files, trained_world):
    sign_in(page, console.url, keys["group"])
    page.goto(f"{console.url}/overview")
    expected = crm_files["credit_grade"].value_counts()
    assert grade_counts(page) == {g: int(expected.get(g, 0)) for g in range(1, 6)}
    s, month = trained_world.settings, trained_world.months[-1]
    snapshot = sum(
        len(pd.read_parquet(s.offline_dir / "profile" / f"{p}_{month}.parquet")) for p in ("GD", "HE")
    )
    assert int(page.get_attribute("#credit-overview", "data-customers")) == snapshot == len(crm_files)
    by_province = crm_files.groupby("province").size()
    for p in ("GD", "HE"):
        assert int(page.inner_text(f'#analysis tr[data-value="{p}"] td.total')) == by_province[p]

    # drill into Hebei by brand, and ask how many extremely poor Easyown customers it has
    page.select_option("#drill", "HE")
    page.select_option("#dimension", "brand")
    page.select_option("#q-brand", "easyown")
    page.select_option("#q-credit_grade", "1")
    with page.expect_navigation():
        page.click("#show")
    he = crm_files[crm_files["province"] == "HE"]
    assert grade_counts(page) == {g: int((he["credit_grade"] == g).sum()) for g in range(1, 6)}
    assert int(page.inner_text('#analysis tr[data-value="total"] td.total')) == len(he)
    # the batch file has no brand: the snapshot's, joined on the number
    profile = pd.read_parquet(s.offline_dir / "profile" / f"HE_{month}.parquet")[["msisdn", "brand"]]
    joined = he.merge(profile, on="msisdn")
    for brand, n in joined.groupby("brand").size().items():
        assert int(page.inner_text(f'#analysis tr[data-value="{brand}"] td.total')) == n
    wanted = ((joined["brand"] == "easyown") & (joined["credit_grade"] == 1)).sum()
    assert int(page.inner_text("#adhoc-count")) == wanted

    page.click("#language")
    page.wait_for_selector("#credit-overview")
    assert "Credit overview" in page.inner_text("#credit-overview h2")


def snapshot_cities(settings, province: str, month: str) -> pd.DataFrame:
    """The offline store's snapshot of a province-month joined to its subscriber master's city."""
    from features.schemas import partition_path

    snapshot = pd.read_parquet(
        settings.offline_dir / "profile" / f"{province}_{month}.parquet", columns=["msisdn"]
    )
    master = pd.read_parquet(
        partition_path(settings.raw_dir, "subscribers", province), columns=["msisdn", "city"]
    )
    joined = snapshot.merge(master.drop_duplicates("msisdn"), on="msisdn", how="left")
    joined["city"] = joined["city"].fillna("").str.strip().replace("", "unknown")
    return joined


@pytest.mark.browser
def test_a_manager_drills_from_national_to_a_city(console, page, keys, crm_files, trained_world):
    s, months = trained_world.settings, trained_world.months
    gd = snapshot_cities(s, "GD", months[-1])
    sign_in(page, console.url, keys["group"])
    page.goto(f"{console.url}/overview")
    # national: the provinces side by side, the trend over every month
    assert page.locator("#comparison tr[data-value]").count() == 3  # GD, HE, total
    page.wait_for_selector("#comparison-chart[data-drawn='1']")
    page.wait_for_selector("#trend-grades[data-drawn='1']")
    assert page.locator("#trend tr[data-month]").count() == len(months)

    page.select_option("#drill", "GD")
    with page.expect_navigation():
        page.click("#show")
    by_city = gd.groupby("city").size()
    for city, n in by_city.items():  # the province's cities compared: the snapshot joined to the master
        assert int(page.inner_text(f'#comparison tr[data-value="GD/{city}"] td.total')) == n

    city = by_city.idxmax()
    page.select_option("#drill", f"GD/{city}")
    page.select_option("#dimension", "brand")
    with page.expect_navigation():
        page.click("#show")
    in_city = crm_files.merge(gd[gd["city"] == city], on="msisdn")
    assert int(page.get_attribute("#credit-overview", "data-customers")) == by_city[city] == len(in_city)
    assert grade_counts(page) == {g: int((in_city["credit_grade"] == g).sum()) for g in range(1, 6)}
    bands = {
        b: int(page.inner_text(f'#band-overview tr[data-band="{b}"] td.count'))
        for b in ("low", "medium", "high")
    }
    assert bands == {b: int((in_city["churn_band"] == b).sum()) for b in ("low", "medium", "high")}
    latest = page.locator(f'#trend tr[data-month="{months[-1]}"] td.total').inner_text()
    assert int(latest) == len(in_city)

    # the export is this table: the city's customers by brand
    with page.expect_download() as download:
        page.click("#export")
    exported = pd.read_csv(download.value.path(), encoding="utf-8-sig")
    profile = pd.read_parquet(
        s.offline_dir / "profile" / f"GD_{months[-1]}.parquet", columns=["msisdn", "brand"]
    )
    expected = in_city.merge(profile, on="msisdn").groupby("brand").size()
    got = exported[exported["brand"] != "total"].set_index("brand")["customers"]
    assert got.to_dict() == expected.to_dict()
    assert int(exported.loc[exported["brand"] == "total", "customers"].iloc[0]) == len(in_city)


@pytest.mark.browser
def test_a_gd_key_sees_guangdong_alone(console, page, keys, crm_files):
    sign_in(page, console.url, keys["GD"])
    page.goto(f"{console.url}/overview")
    gd = crm_files[crm_files["province"] == "GD"]
    assert grade_counts(page) == {g: int((gd["credit_grade"] == g).sum()) for g in range(1, 6)}
    drills = [o.get_attribute("value") for o in page.locator("#drill option").all()]
    assert (
        drills[0] == "GD" and len(drills) > 1 and all(d.startswith("GD/") for d in drills[1:])
    )  # its cities
    assert "HE" not in page.inner_text("main")
    # a forged form asking for Hebei: refused, Guangdong's figures shown
    with httpx.Client(base_url=console.url, timeout=60) as client:
        login = client.get("/login")
        csrf = login.text.split('name="csrf" value="')[1].split('"')[0]
        client.post("/login", data={"key": keys["GD"], "csrf": csrf})
        csrf = client.get("/overview").text.split('name="csrf" value="')[1].split('"')[0]
        forged = client.post("/overview", data={"csrf": csrf, "drill": "HE"})
        assert forged.status_code == 422
        assert f'data-customers="{len(gd)}"' in forged.text and 'data-value="HE"' not in forged.text
        bads = ({"drill": "*"}, {"drill": "HE/Shijiazhuang"}, {"dimension": "msisdn"}, {"credit_grade": "9"})
        for bad in (*bads, {"month": "1999-01"}, {"churn_band": "x"}):
            assert client.post("/overview", data={"csrf": csrf, **bad}).status_code == 422
            assert client.post("/overview/export", data={"csrf": csrf, **bad}).status_code == 422
        exported = client.post("/overview/export", data={"csrf": csrf, "dimension": "province"})
        assert exported.status_code == 200 and exported.headers["content-type"].startswith("text/csv")
        assert exported.text.lstrip("\ufeff").splitlines()[1].startswith("GD,") and "HE" not in exported.text
        assert client.post("/overview/export", data={"csrf": "forged"}).status_code == 403
        health = client.get("/health")
        assert health.status_code == 200 and 'data-province="HE"' not in health.text
        assert client.post("/health", data={"csrf": csrf, "week": "../x"}).status_code == 422


@pytest.mark.browser
def test_model_health_shows_each_champion_and_its_held_out_score(console, page, keys, trained_world):
    from mlflow import MlflowClient

    from core.tasks import TASKS
    from training.registry import champion_version, configure_mlflow

    sign_in(page, console.url, keys["group"])
    page.goto(f"{console.url}/health")
    configure_mlflow(trained_world.settings)
    client = MlflowClient()
    for name, t in TASKS.items():
        champion = champion_version(client, t.model_name())
        row = page.locator(f'#champions tr[data-province="GD"][data-task="{name}"]')
        assert row.locator("code.uri").inner_text() == f"models:/{t.model_name()}/{champion.version}"
        link = row.locator("a.mlflow").get_attribute("href")
        assert link.endswith(f"/#/models/{t.model_name()}/versions/{champion.version}")
        assert float(row.locator(".held-out").inner_text()) == pytest.approx(
            float(champion.tags["held_out_score"]), abs=5e-5
        )
    assert page.locator("#champions tr[data-task]").count() == 2 * len(TASKS)
    assert page.is_visible("#no-weekly")  # the trained world has no weekly report yet
