"""The box's zone: one function for the pages, the reports and the mail."""

import json
import sqlite3

from firmware.datadir import site_local_time, site_zone
from firmware.localtime import DEFAULT_ZONE, box_zone


def test_the_saved_zone_else_europe_london():
    assert DEFAULT_ZONE == "Europe/London"
    assert box_zone("America/New_York") == "America/New_York"
    assert box_zone(None) == box_zone("") == DEFAULT_ZONE
    # A zone this box's zone database lacks (a release's tzdata dropped it) dates as a box
    # not set up does; the web UI's LocalTime raised on it.
    assert box_zone("Mars/Olympus_Mons") == DEFAULT_ZONE


def _save(data_dir, settings):
    db = sqlite3.connect(data_dir / "web.db")
    db.execute("CREATE TABLE site (key TEXT PRIMARY KEY, value TEXT NOT NULL)")
    db.execute("INSERT INTO site (key, value) VALUES ('settings', ?)", (json.dumps(settings),))
    db.commit()
    db.close()


def test_a_data_directory_says_the_zone_its_settings_save(tmp_path):
    assert site_zone(tmp_path) == DEFAULT_ZONE  # not set up: no web.db
    _save(tmp_path, {"time_zone": "Asia/Tokyo"})
    assert site_zone(tmp_path) == "Asia/Tokyo" == site_local_time(tmp_path).zone_name


def test_settings_that_save_no_zone_are_in_the_default(tmp_path):
    _save(tmp_path, {"organisation": "Acme"})
    assert site_zone(tmp_path) == DEFAULT_ZONE
