"""The bundled demo database: a small, invented shop, reproducible from a fixed seed.

`build_demo(path)` writes it as a SQLite file (`python fixtures_db/demo.py` refreshes the
committed `fixtures_db/demo.sqlite`); `load_demo(url)` builds the same rows on any engine.

Tables: `category` (a 3-level tree through `parent_id`), `product`, `customer`, `address`,
`employee` (a management hierarchy through `manager_id`), `orders` (customer, shipping address,
sales rep), `order_item` (composite primary key), `payment`. Names and e-mails are made up from
small built-in lists.
"""

from __future__ import annotations

import random
import sys
from datetime import date, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import sqlalchemy as sa

if __package__ in (None, ""):  # run as `python fixtures_db/demo.py`
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from fixtures_db.loader import Row, Scenario, load

SEED = 42
CUSTOMERS = 300
ORDERS = 2000
START = date(2023, 1, 1)
DAYS = 730
BUNDLED = Path(__file__).with_name("demo.sqlite")

metadata = sa.MetaData()


def _id() -> sa.Column[int]:
    return sa.Column("id", sa.Integer, primary_key=True, autoincrement=False)


sa.Table(
    "category",
    metadata,
    _id(),
    sa.Column("parent_id", sa.Integer, sa.ForeignKey("category.id")),
    sa.Column("name", sa.String(60), nullable=False),
)
sa.Table(
    "product",
    metadata,
    _id(),
    sa.Column("category_id", sa.Integer, sa.ForeignKey("category.id"), nullable=False),
    sa.Column("name", sa.String(80), nullable=False),
    sa.Column("sku", sa.String(20), nullable=False, unique=True),
    sa.Column("list_price", sa.Numeric(10, 2), nullable=False),
)
sa.Table(
    "customer",
    metadata,
    _id(),
    sa.Column("first_name", sa.String(40), nullable=False),
    sa.Column("last_name", sa.String(40), nullable=False),
    sa.Column("email", sa.String(120), nullable=False, unique=True),
    sa.Column("created_at", sa.DateTime, nullable=False),
)
sa.Table(
    "address",
    metadata,
    _id(),
    sa.Column("customer_id", sa.Integer, sa.ForeignKey("customer.id"), nullable=False),
    sa.Column("street", sa.String(120), nullable=False),
    sa.Column("city", sa.String(60), nullable=False),
    sa.Column("postcode", sa.String(12), nullable=False),
    sa.Column("country", sa.String(2), nullable=False),
)
sa.Table(
    "employee",
    metadata,
    _id(),
    sa.Column("manager_id", sa.Integer, sa.ForeignKey("employee.id")),
    sa.Column("first_name", sa.String(40), nullable=False),
    sa.Column("last_name", sa.String(40), nullable=False),
    sa.Column("title", sa.String(40), nullable=False),
)
sa.Table(
    "orders",
    metadata,
    _id(),
    sa.Column("customer_id", sa.Integer, sa.ForeignKey("customer.id"), nullable=False),
    sa.Column("shipping_address_id", sa.Integer, sa.ForeignKey("address.id")),
    sa.Column("sales_rep_id", sa.Integer, sa.ForeignKey("employee.id")),
    sa.Column("order_date", sa.Date, nullable=False),
    sa.Column("status", sa.String(12), nullable=False),
)
sa.Table(
    "order_item",
    metadata,
    sa.Column("order_id", sa.Integer, sa.ForeignKey("orders.id"), primary_key=True),
    sa.Column("line_no", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("product_id", sa.Integer, sa.ForeignKey("product.id"), nullable=False),
    sa.Column("quantity", sa.Integer, nullable=False),
    sa.Column("unit_price", sa.Numeric(10, 2), nullable=False),
)
sa.Table(
    "payment",
    metadata,
    _id(),
    sa.Column("order_id", sa.Integer, sa.ForeignKey("orders.id"), nullable=False),
    sa.Column("amount", sa.Numeric(10, 2), nullable=False),
    sa.Column("paid_at", sa.DateTime, nullable=False),
)

_FIRST = [
    "Ada",
    "Alan",
    "Amira",
    "Bruno",
    "Chloe",
    "Dmitri",
    "Elena",
    "Farah",
    "Felix",
    "Grace",
    "Hugo",
    "Ines",
    "Jonas",
    "Kenji",
    "Lara",
    "Lucia",
    "Malik",
    "Marta",
    "Nils",
    "Noor",
    "Omar",
    "Paula",
    "Quentin",
    "Rosa",
    "Sami",
    "Sofia",
    "Tariq",
    "Uma",
    "Viktor",
    "Wen",
    "Yara",
    "Zoe",
]
_LAST = [
    "Abbott",
    "Baptiste",
    "Castillo",
    "Dubois",
    "Eriksen",
    "Fontaine",
    "Garcia",
    "Haddad",
    "Ivanova",
    "Jensen",
    "Kowalski",
    "Larsen",
    "Moreau",
    "Nakamura",
    "Okafor",
    "Petrov",
    "Quinn",
    "Rossi",
    "Schmidt",
    "Tanaka",
    "Ueda",
    "Varga",
    "Weber",
    "Xu",
    "Yilmaz",
    "Zielinski",
]
_CITIES = (
    ("Lyon", "FR"),
    ("Porto", "PT"),
    ("Ghent", "BE"),
    ("Leipzig", "DE"),
    ("Turin", "IT"),
    ("Malmo", "SE"),
    ("Cork", "IE"),
    ("Brno", "CZ"),
)
_STREETS = [
    "Oak",
    "Mill",
    "River",
    "Station",
    "Market",
    "Church",
    "Garden",
    "Harbour",
    "Linden",
    "Castle",
]
_CATEGORIES = {
    "Home": {"Kitchen": ["Cookware", "Knives"], "Garden": ["Tools", "Seeds"]},
    "Sport": {"Cycling": ["Helmets", "Lights"], "Running": ["Shoes"]},
    "Office": {"Paper": [], "Desks": ["Standing", "Classic"]},
}
_NOUNS = [
    "Pan",
    "Lamp",
    "Kettle",
    "Helmet",
    "Chair",
    "Notebook",
    "Bottle",
    "Rake",
    "Glove",
    "Light",
    "Mat",
    "Pen",
]
_ADJECTIVES = ["Compact", "Classic", "Pro", "Eco", "Deluxe", "Mini", "Urban", "Trail"]
_STATUSES = ("delivered",) * 6 + ("shipped", "shipped", "pending", "cancelled", "returned")


def demo_rows(seed: int = SEED) -> dict[str, list[Row]]:
    """Generate every table's rows, parents first, from `seed`."""
    rng = random.Random(seed)
    out: dict[str, list[Row]] = {"category": _categories()}
    leaves = [c["id"] for c in out["category"] if c["parent_id"] is not None]
    out["product"] = _products(rng, leaves)
    out["customer"] = _customers(rng)
    out["address"] = _addresses(rng, out["customer"])
    out["employee"] = _employees(rng)
    out["orders"] = _orders(rng, out["address"], out["employee"])
    out["order_item"] = _items(rng, out["orders"], out["product"])
    out["payment"] = _payments(rng, out["orders"], out["order_item"])
    return out


def scenario(seed: int = SEED) -> Scenario:
    """Bundle the demo schema and rows for `fixtures_db.loader.load`."""
    return Scenario(metadata=metadata, rows=demo_rows(seed))


def load_demo(url: str) -> None:
    """Create and fill the demo shop in the empty database at `url` (any of the four engines)."""
    load(url, scenario())


def build_demo(path: str) -> None:
    """Write the demo shop to a new SQLite file at `path`, replacing any file there."""
    target = Path(path).resolve()
    target.unlink(missing_ok=True)
    load_demo(f"sqlite:///{target}")


def _categories() -> list[Row]:
    rows: list[Row] = []

    def add(name: str, parent: int | None) -> int:
        rows.append({"id": len(rows) + 1, "parent_id": parent, "name": name})
        return len(rows)

    for top, subs in _CATEGORIES.items():
        top_id = add(top, None)
        for sub, leaves in subs.items():
            sub_id = add(sub, top_id)
            for leaf in leaves:
                add(leaf, sub_id)
    return rows


def _products(rng: random.Random, categories: list[int]) -> list[Row]:
    return [
        {
            "id": i,
            "category_id": rng.choice(categories),
            "name": f"{rng.choice(_ADJECTIVES)} {rng.choice(_NOUNS)} {i}",
            "sku": f"SKU-{i:05d}",
            "list_price": Decimal(rng.randint(199, 49999)) / 100,
        }
        for i in range(1, 201)
    ]


def _customers(rng: random.Random) -> list[Row]:
    rows = []
    for i in range(1, CUSTOMERS + 1):
        first, last = rng.choice(_FIRST), rng.choice(_LAST)
        joined = datetime(2022, 1, 1) + timedelta(minutes=rng.randint(0, 365 * 24 * 60))
        rows.append(
            {
                "id": i,
                "first_name": first,
                "last_name": last,
                "email": f"{first}.{last}.{i}@example.com".lower(),
                "created_at": joined,
            }
        )
    return rows


def _addresses(rng: random.Random, customers: list[Row]) -> list[Row]:
    rows: list[Row] = []
    for cust in customers:
        for _ in range(rng.choice((1, 1, 1, 2, 2, 3))):
            city, country = rng.choice(_CITIES)
            rows.append(
                {
                    "id": len(rows) + 1,
                    "customer_id": cust["id"],
                    "street": f"{rng.randint(1, 199)} {rng.choice(_STREETS)} Street",
                    "city": city,
                    "postcode": f"{rng.randint(10000, 99999)}",
                    "country": country,
                }
            )
    return rows


def _employees(rng: random.Random) -> list[Row]:
    """One CEO, 3 directors, 6 managers, 15 sales reps: a four-level hierarchy."""
    levels = (("CEO", 1), ("Director", 3), ("Manager", 6), ("Sales Rep", 15))
    rows: list[Row] = []
    above: list[int] = []
    for title, n in levels:
        mine = []
        for _ in range(n):
            eid = len(rows) + 1
            manager = rng.choice(above) if above else None
            rows.append(
                {
                    "id": eid,
                    "manager_id": manager,
                    "first_name": rng.choice(_FIRST),
                    "last_name": rng.choice(_LAST),
                    "title": title,
                }
            )
            mine.append(eid)
        above = mine
    return rows


def _orders(rng: random.Random, addresses: list[Row], employees: list[Row]) -> list[Row]:
    by_customer: dict[int, list[int]] = {}
    for a in addresses:
        by_customer.setdefault(a["customer_id"], []).append(a["id"])
    reps = [e["id"] for e in employees if e["title"] == "Sales Rep"]
    rows = []
    for i in range(1, ORDERS + 1):
        customer = rng.randint(1, CUSTOMERS)
        rows.append(
            {
                "id": i,
                "customer_id": customer,
                # a few orders are picked up in store (no address) or sold online (no rep)
                "shipping_address_id": rng.choice(by_customer[customer]) if i % 25 else None,
                "sales_rep_id": rng.choice(reps) if i % 7 else None,
                "order_date": START + timedelta(days=rng.randint(0, DAYS - 1)),
                "status": rng.choice(_STATUSES),
            }
        )
    return rows


def _items(rng: random.Random, orders: list[Row], products: list[Row]) -> list[Row]:
    rows = []
    for order in orders:
        for line in range(1, rng.choice((1, 2, 2, 3, 3, 3, 4, 5)) + 1):
            product = rng.choice(products)
            rows.append(
                {
                    "order_id": order["id"],
                    "line_no": line,
                    "product_id": product["id"],
                    "quantity": rng.choice((1, 1, 1, 2, 2, 3, 5)),
                    "unit_price": product["list_price"],
                }
            )
    return rows


def _payments(rng: random.Random, orders: list[Row], items: list[Row]) -> list[Row]:
    totals: dict[int, Decimal] = {}
    for it in items:
        totals[it["order_id"]] = totals.get(it["order_id"], Decimal(0)) + (
            it["unit_price"] * it["quantity"]
        )
    rows: list[Row] = []
    for order in orders:
        if order["status"] in ("pending", "cancelled"):
            continue
        total = totals[order["id"]]
        paid = datetime.combine(order["order_date"], datetime.min.time())
        parts = [total] if total < 200 or rng.random() < 0.7 else _split(total)
        for part in parts:
            paid += timedelta(hours=rng.randint(1, 72), minutes=rng.randint(0, 59))
            rows.append(
                {"id": len(rows) + 1, "order_id": order["id"], "amount": part, "paid_at": paid}
            )
    return rows


def _split(total: Decimal) -> list[Decimal]:
    """Split a large order into a deposit and the balance, both to the cent."""
    deposit = (total * Decimal("0.3")).quantize(Decimal("0.01"))
    return [deposit, total - deposit]


if __name__ == "__main__":
    build_demo(sys.argv[1] if len(sys.argv) > 1 else str(BUNDLED))
