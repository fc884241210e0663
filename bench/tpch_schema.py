"""The TPC-H schema and the benchmark's task, shared by the loader, the baselines and the runner.

The task: the customers with ``c_custkey <= N`` (1% of customers is N = 1,500 at SF1), their
orders and line items, and every part, supplier, partsupp, nation and region those need.
"""

from __future__ import annotations

TABLES = ("region", "nation", "supplier", "customer", "part", "partsupp", "orders", "lineitem")

COLUMNS: dict[str, list[tuple[str, str]]] = {
    "region": [("r_regionkey", "INTEGER"), ("r_name", "CHAR(25)"), ("r_comment", "VARCHAR(152)")],
    "nation": [
        ("n_nationkey", "INTEGER"), ("n_name", "CHAR(25)"), ("n_regionkey", "INTEGER"),
        ("n_comment", "VARCHAR(152)"),
    ],
    "supplier": [
        ("s_suppkey", "INTEGER"), ("s_name", "CHAR(25)"), ("s_address", "VARCHAR(40)"),
        ("s_nationkey", "INTEGER"), ("s_phone", "CHAR(15)"), ("s_acctbal", "DECIMAL(15,2)"),
        ("s_comment", "VARCHAR(101)"),
    ],
    "customer": [
        ("c_custkey", "INTEGER"), ("c_name", "VARCHAR(25)"), ("c_address", "VARCHAR(40)"),
        ("c_nationkey", "INTEGER"), ("c_phone", "CHAR(15)"), ("c_acctbal", "DECIMAL(15,2)"),
        ("c_mktsegment", "CHAR(10)"), ("c_comment", "VARCHAR(117)"),
    ],
    "part": [
        ("p_partkey", "INTEGER"), ("p_name", "VARCHAR(55)"), ("p_mfgr", "CHAR(25)"),
        ("p_brand", "CHAR(10)"), ("p_type", "VARCHAR(25)"), ("p_size", "INTEGER"),
        ("p_container", "CHAR(10)"), ("p_retailprice", "DECIMAL(15,2)"),
        ("p_comment", "VARCHAR(23)"),
    ],
    "partsupp": [
        ("ps_partkey", "INTEGER"), ("ps_suppkey", "INTEGER"), ("ps_availqty", "INTEGER"),
        ("ps_supplycost", "DECIMAL(15,2)"), ("ps_comment", "VARCHAR(199)"),
    ],
    "orders": [
        ("o_orderkey", "INTEGER"), ("o_custkey", "INTEGER"), ("o_orderstatus", "CHAR(1)"),
        ("o_totalprice", "DECIMAL(15,2)"), ("o_orderdate", "DATE"),
        ("o_orderpriority", "CHAR(15)"), ("o_clerk", "CHAR(15)"), ("o_shippriority", "INTEGER"),
        ("o_comment", "VARCHAR(79)"),
    ],
    "lineitem": [
        ("l_orderkey", "INTEGER"), ("l_partkey", "INTEGER"), ("l_suppkey", "INTEGER"),
        ("l_linenumber", "INTEGER"), ("l_quantity", "DECIMAL(15,2)"),
        ("l_extendedprice", "DECIMAL(15,2)"), ("l_discount", "DECIMAL(15,2)"),
        ("l_tax", "DECIMAL(15,2)"), ("l_returnflag", "CHAR(1)"), ("l_linestatus", "CHAR(1)"),
        ("l_shipdate", "DATE"), ("l_commitdate", "DATE"), ("l_receiptdate", "DATE"),
        ("l_shipinstruct", "CHAR(25)"), ("l_shipmode", "CHAR(10)"), ("l_comment", "VARCHAR(44)"),
    ],
}  # fmt: skip

PRIMARY_KEYS = {
    "region": ("r_regionkey",),
    "nation": ("n_nationkey",),
    "supplier": ("s_suppkey",),
    "customer": ("c_custkey",),
    "part": ("p_partkey",),
    "partsupp": ("ps_partkey", "ps_suppkey"),
    "orders": ("o_orderkey",),
    "lineitem": ("l_orderkey", "l_linenumber"),
}

# (child, columns, parent, parent columns): the spec's foreign keys.
FOREIGN_KEYS = [
    ("nation", ("n_regionkey",), "region", ("r_regionkey",)),
    ("supplier", ("s_nationkey",), "nation", ("n_nationkey",)),
    ("customer", ("c_nationkey",), "nation", ("n_nationkey",)),
    ("partsupp", ("ps_partkey",), "part", ("p_partkey",)),
    ("partsupp", ("ps_suppkey",), "supplier", ("s_suppkey",)),
    ("orders", ("o_custkey",), "customer", ("c_custkey",)),
    ("lineitem", ("l_orderkey",), "orders", ("o_orderkey",)),
    ("lineitem", ("l_partkey", "l_suppkey"), "partsupp", ("ps_partkey", "ps_suppkey")),
]


def create_sql(table: str, keys: bool = True) -> str:
    cols = [f"{name} {sqltype} NOT NULL" for name, sqltype in COLUMNS[table]]
    if keys:
        cols.append(f"PRIMARY KEY ({', '.join(PRIMARY_KEYS[table])})")
    return f"CREATE TABLE {table} ({', '.join(cols)})"


def fk_sql(i: int) -> str:
    child, cols, parent, refs = FOREIGN_KEYS[i]
    return (
        f"ALTER TABLE {child} ADD CONSTRAINT {child}_fk{i} FOREIGN KEY ({', '.join(cols)}) "
        f"REFERENCES {parent} ({', '.join(refs)})"
    )


def fk_index_sql(i: int) -> str | None:
    """An index on the FK columns, unless the primary key already starts with them."""
    child, cols, _, _ = FOREIGN_KEYS[i]
    if PRIMARY_KEYS[child][: len(cols)] == cols:
        return None
    return f"CREATE INDEX {child}_fk{i}_idx ON {child} ({', '.join(cols)})"


def subset_queries(customers: int) -> list[tuple[str, str]]:
    """Key sets of the task as (temp table, SELECT) in dependency order."""
    return [
        ("k_customer", f"SELECT c_custkey FROM customer WHERE c_custkey <= {customers}"),
        ("k_orders", "SELECT o_orderkey FROM orders JOIN k_customer ON o_custkey = c_custkey"),
        (
            "k_partsupp",
            "SELECT DISTINCT l_partkey, l_suppkey FROM lineitem "
            "JOIN k_orders ON l_orderkey = o_orderkey",
        ),
        ("k_part", "SELECT DISTINCT l_partkey FROM k_partsupp"),
        ("k_supplier", "SELECT DISTINCT l_suppkey FROM k_partsupp"),
        (
            "k_nation",
            "SELECT c_nationkey AS n FROM customer JOIN k_customer USING (c_custkey) UNION "
            "SELECT s_nationkey FROM supplier JOIN k_supplier ON s_suppkey = l_suppkey",
        ),
        (
            "k_region",
            "SELECT DISTINCT n_regionkey FROM nation JOIN k_nation ON n_nationkey = n",
        ),
    ]


def table_selects() -> dict[str, str]:
    """Per table: the SELECT of its subset rows, reading the key sets."""
    return {
        "region": "SELECT r.* FROM region r JOIN k_region k ON r_regionkey = k.n_regionkey",
        "nation": "SELECT t.* FROM nation t JOIN k_nation k ON n_nationkey = k.n",
        "supplier": "SELECT t.* FROM supplier t JOIN k_supplier k ON s_suppkey = k.l_suppkey",
        "customer": "SELECT t.* FROM customer t JOIN k_customer k USING (c_custkey)",
        "part": "SELECT t.* FROM part t JOIN k_part k ON p_partkey = k.l_partkey",
        "partsupp": (
            "SELECT t.* FROM partsupp t JOIN k_partsupp k "
            "ON ps_partkey = k.l_partkey AND ps_suppkey = k.l_suppkey"
        ),
        "orders": "SELECT t.* FROM orders t JOIN k_orders k USING (o_orderkey)",
        "lineitem": "SELECT t.* FROM lineitem t JOIN k_orders k ON l_orderkey = k.o_orderkey",
    }
