"""The box's zone: one function for the pages, the reports and the mail."""

from firmware.datadir import site_local_time, site_zone
from firmware.localtime import DEFAULT_ZONE, box_zone

from support.simbox import save_site_settings


def test_the_saved_zone_else_europe_london():
    assert DEFAULT_ZONE == "Europe/London"
    assert box_zone("America/New_York") == "America/New_York"
    assert box_zone(None) == box_zone("") == DEFAULT_ZONE
    # A zone this box's zone database lacks (a release's tzdata dropped it) dates as a box
    # not set up does; the web UI's LocalTime raised on it.
    assert box_zone("Mars/Olympus_Mons") == DEFAULT_ZONE


def test_a_data_directory_says_the_zone_its_settings_save(tmp_path):
    assert site_zone(tmp_path) == DEFAULT_ZONE  # not set up: no web.db
    save_site_settings(tmp_path, time_zone="Asia/Tokyo")
    assert site_zone(tmp_path) == "Asia/Tokyo" == site_local_time(tmp_path).zone_name


def test_settings_that_save_no_zone_are_in_the_default(tmp_path):
    save_site_settings(tmp_path, organisation="Acme")
    assert site_zone(tmp_path) == DEFAULT_ZONE
