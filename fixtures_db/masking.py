"""A small schema full of personal data and keys made of it, built alike on all four engines.

`build_masking(url)` creates and fills, deterministically:

- `person`: integer key, unique `email`, names, phone, national id, free-text `notes` holding an
  e-mail address, `born` (date), `salary` (numeric), `profile` (JSON text with an e-mail and a
  card number inside).
- `account`: a composite primary key of personal strings (`region`, `login`), owned by a person.
- `login_event`: a composite foreign key onto `account(region, login)`, and an `ip`.
- `support_ticket`: `region`, `login` that point at `account` with no declared foreign key (the
  test config declares it as a virtual one).
- `badge`: a unique `code` short enough that masked codes collide, and `team` (few values).
"""

from __future__ import annotations

import json
import random
from datetime import date, timedelta
from decimal import Decimal

import sqlalchemy as sa

from fixtures_db.loader import Row, Scenario, load

metadata = sa.MetaData()

sa.Table(
    "person",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("email", sa.String(80), nullable=False, unique=True),
    sa.Column("first_name", sa.String(40), nullable=False),
    sa.Column("last_name", sa.String(40), nullable=False),
    sa.Column("phone", sa.String(24)),
    sa.Column("ssn", sa.String(11)),
    sa.Column("notes", sa.Text),
    sa.Column("born", sa.Date),
    sa.Column("salary", sa.Numeric(10, 2)),
    sa.Column("profile", sa.Text),
)
sa.Table(
    "account",
    metadata,
    sa.Column("region", sa.String(8), primary_key=True),
    sa.Column("login", sa.String(32), primary_key=True),
    sa.Column("person_id", sa.Integer, sa.ForeignKey("person.id"), nullable=False),
)
sa.Table(
    "login_event",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("region", sa.String(8), nullable=False),
    sa.Column("login", sa.String(32), nullable=False),
    sa.Column("ip", sa.String(45)),
    sa.ForeignKeyConstraint(["region", "login"], ["account.region", "account.login"]),
)
sa.Table(
    "support_ticket",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("region", sa.String(8)),
    sa.Column("login", sa.String(32)),
    sa.Column("body", sa.String(200)),
)
sa.Table(
    "badge",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("code", sa.String(4), nullable=False, unique=True),
    sa.Column("team", sa.String(20), nullable=False),
)

# Invented names, so that a realistic fake can never equal an original by chance.
FIRST = ["Qadira", "Vorlen", "Zyphra", "Ozrick", "Thessaly", "Brannoc", "Ilvane", "Xantor"]
LAST = ["Quellbrook", "Vantorski", "Zebrowitz", "Orlaquin", "Thistlewarp", "Brackenholt"]
PEOPLE = 60
BADGES = 400


def masking_rows() -> dict[str, list[Row]]:
    """Generate every table's rows from a fixed seed."""
    rng = random.Random(4242)
    people, accounts, events, tickets = [], [], [], []
    for i in range(1, PEOPLE + 1):
        first, last = rng.choice(FIRST), rng.choice(LAST)
        email = f"{first}.{last}.{i}@corp-example.org".lower()
        people.append(
            {
                "id": i,
                "email": email,
                "first_name": first,
                "last_name": last,
                "phone": f"+1 555 {rng.randrange(1000, 9999)} {i:04d}",
                "ssn": f"{rng.randrange(100, 899)}-{rng.randrange(10, 99)}-{1000 + i}",
                "notes": f"Called {first} back at {email} about the invoice" if i % 3 else None,
                "born": date(1950, 1, 1) + timedelta(days=rng.randrange(0, 18000)),
                "salary": Decimal(rng.randrange(300000, 1500000)) / 100,
                "profile": json.dumps(
                    {"email": email, "card": {"number": f"4111{i:012d}", "exp": "12/29"}}
                ),
            }
        )
        for region in rng.sample(["eu", "us", "apac"], rng.randrange(1, 3)):
            login = f"{first}{last}{i}".lower()
            accounts.append({"region": region, "login": login, "person_id": i})
    for n, account in enumerate(accounts * 2, start=1):
        events.append(
            {
                "id": n,
                "region": account["region"],
                "login": account["login"],
                "ip": f"10.{rng.randrange(256)}.{rng.randrange(256)}.{rng.randrange(1, 255)}",
            }
        )
        if n % 4 == 0:
            body = f"{account['login']} cannot sign in"
            tickets.append(
                {"id": n, "region": account["region"], "login": account["login"], "body": body}
            )
    badges = [
        {"id": i, "code": f"B{i:03d}", "team": rng.choice(["red", "blue", "green"])}
        for i in range(1, BADGES + 1)
    ]
    return {
        "person": people,
        "account": accounts,
        "login_event": events,
        "support_ticket": tickets,
        "badge": badges,
    }


def scenario() -> Scenario:
    """Bundle the schema and rows for `fixtures_db.loader.load`."""
    return Scenario(metadata=metadata, rows=masking_rows())


def build_masking(url: str) -> None:
    """Create and fill the masking scenario at `url`."""
    load(url, scenario())
