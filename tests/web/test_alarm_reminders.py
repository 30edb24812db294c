"""The Alarms page and the dashboard's Health panel say the same of the box's reminders.

The health panel listed the reminders (no retention period set, the recovery key never
confirmed as stored, ...) as the box is now; the Alarms page showed only the alarm history,
which has them once the periodic round raised them, and said "No alarms." before: an
owner read "No alarms." on one page and a list of them on the other."""

import dataclasses
import html


def _alarms_page(client):
    resp = client.get("/alarms")
    assert resp.status_code == 200
    return html.unescape(resp.get_data(as_text=True))


def _health(client):
    return client.get("/api/health").get_json()["alarms"]


def _set_retention(box, days):
    config = box.config_store.get()
    retention = dataclasses.replace(config.policy.retention, default_days=days)
    box.config_store.save(config.replace(policy=dataclasses.replace(config.policy, retention=retention)))


def test_the_alarms_page_lists_the_reminders_the_health_panel_lists(box, people):
    assert box.alarm_log.history() == []  # no round has raised them yet
    for who in ("sam", "audrey", "ivan"):
        client = people[who]
        reminders = [a for a in _health(client) if a.startswith("No retention period")]
        assert reminders, who  # (the box as the fixture makes it keeps every recording)
        page = _alarms_page(client)
        section = page[page.index('id="alarm-reminders"') : page.index('id="alarm-history"')]
        for text in reminders:
            assert text in section, (who, text)
        assert "No alarms." not in page, who
        assert "No alarm raised; the reminders above are on now." in page, who


def test_the_reminders_done_the_alarms_page_says_no_alarms_as_the_health_panel_lists_none(box, people):
    from .test_documents import back_up_key_store

    sam = people["sam"]
    _set_retention(box, 90)
    page = _alarms_page(sam)
    assert "No retention period" not in page and "No retention period" not in " ".join(_health(sam))
    assert [a for a in _health(sam) if a in page] == _health(sam) != []  # the key store's backup
    assert back_up_key_store(box, people["alice"]).status_code == 200
    assert _health(sam) == []
    page = _alarms_page(sam)
    assert 'id="alarm-reminders"' not in page and "No alarms." in page
