"""Help: one page per screen, written for the installers and supervisors who use them.

Every page with a menu entry has a topic here, and the page links to it
("Help with this page"). Help is public: it holds no data of the box, and an
installer may need it before anyone can log in (during setup).
"""

from flask import Blueprint, abort, render_template

from ..security import public

bp = Blueprint("help", __name__, url_prefix="/help")

# topic -> title; the text is in templates/help_<topic>.html
TOPICS = {
    "lines": "Lines (the dashboard)",
    "calls": "Finding calls",
    "call": "A call's page",
    "phonebook": "The phonebook",
    "audit": "The audit trail",
    "users": "Users and roles",
    "settings": "Settings",
    "rules": "Recording rules",
    "consent": "Consent notices",
    "retention": "Retention and deletion",
    "reports": "Reports",
    "alarms": "Alarms",
    "sar": "Subject access and disclosures",
    "requests": "Data subjects' requests and their deadlines",
    "documents": "The staff notice and the compliance checklist",
    "mail": "E-mail settings",
    "myline": "My line (for staff)",
    "updates": "Firmware updates",
    "rekey": "Rekey: new recording and recovery keys",
    "password": "Your password",
    "setup": "Setting up the box",
    "training": "Training on the simulated box",
}


@bp.route("")
@public
def index():
    return render_template("help.html", topics=TOPICS, topic=None)


@bp.route("/<topic>")
@public
def topic(topic):
    if topic not in TOPICS:
        abort(404)
    return render_template("help_%s.html" % topic, topics=TOPICS, topic=topic, title="Help: " + TOPICS[topic])
