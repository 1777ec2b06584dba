//! The test database: four tables of varied types (about 280,000 rows;
//! `E2E_ROWS_SCALE=N` multiplies them), created, filled, dropped and
//! checksummed in PostgreSQL.

use std::collections::BTreeMap;

use crate::support::postgres::Postgres;

pub struct TableDef {
    /// Schema-qualified, quoted as gpbackup quotes it.
    pub fqn: &'static str,
    columns: &'static str,
    /// INSERT ... SELECT over generate_series(1, {n}) g.
    fill: &'static str,
    rows: u64,
}

/// Varied types, NULLs next to empty strings, quotes, commas, newlines,
/// backslashes, non-ASCII text, binary data and a quoted mixed-case name.
pub const TABLES: &[TableDef] = &[
    TableDef {
        fqn: "sales.orders",
        columns: "id bigint NOT NULL, customer text, amount numeric(12,2), placed timestamptz, \
                  shipped date, paid boolean, tags text[], note text, payload bytea, attrs jsonb, \
                  ref uuid, ratio double precision",
        fill: r#"SELECT g, 'customer ' || (g % 977), round(((g * 1.37) % 10000)::numeric, 2),
                 timestamptz '2024-01-01 00:00:00+00' + g * interval '37 seconds',
                 date '2020-01-01' + (g % 1500), g % 3 = 0,
                 CASE WHEN g % 5 = 0 THEN NULL ELSE ARRAY['t' || (g % 7), 'x,y', 'q"q'] END,
                 CASE g % 6 WHEN 0 THEN NULL WHEN 1 THEN ''
                      WHEN 2 THEN E'line1\nline2, "quoted"' WHEN 3 THEN E'tab\there\\back'
                      WHEN 4 THEN 'ünïcødé ✓ ' || g ELSE repeat('x', g % 50) END,
                 decode(md5(g::text), 'hex'),
                 jsonb_build_object('g', g, 'k', 'v' || (g % 13), 'nested', jsonb_build_array(g % 3, 'a"b')),
                 md5(g::text)::uuid, g / 7.0
               FROM generate_series(1, {n}) g"#,
        rows: 150_000,
    },
    TableDef {
        fqn: "public.events",
        columns: "id integer NOT NULL, kind varchar(20), at timestamp, qty smallint, score real, \
                  span interval, addr inet, body text",
        fill: r#"SELECT g, (ARRAY['click','view','buy','return'])[1 + g % 4],
                 timestamp '2023-06-01' + g * interval '63 seconds', (g % 30000)::smallint,
                 (g % 1000) / 3.0, make_interval(hours => g % 48, mins => g % 60),
                 ('10.' || (g % 256) || '.' || (g / 256 % 256) || '.1')::inet,
                 CASE WHEN g % 10 = 0 THEN NULL ELSE 'event ' || g || repeat(' lorem ipsum', g % 5) END
               FROM generate_series(1, {n}) g"#,
        rows: 100_000,
    },
    TableDef {
        fqn: r#"sales."Line Items""#,
        columns: r#""order id" bigint, id integer NOT NULL, "Qty" integer, sku char(8), price numeric(8,2)"#,
        fill: r#"SELECT g / 3, g, g % 17, lpad((g % 99999)::text, 8, '0'), (g % 5000) / 100.0
               FROM generate_series(1, {n}) g"#,
        rows: 30_000,
    },
    TableDef { fqn: "public.empty_table", columns: "id integer, v text", fill: "", rows: 0 },
];

pub fn scale() -> u64 {
    std::env::var("E2E_ROWS_SCALE").ok().and_then(|v| v.parse().ok()).filter(|&n| n > 0).unwrap_or(1)
}

pub fn table(fqn: &str) -> &'static TableDef {
    TABLES.iter().find(|t| t.fqn == fqn).unwrap()
}

/// Creates the schema and `tables` in `db` and fills them.
pub fn create_tables(pg: &Postgres, db: &str, tables: &[&TableDef]) {
    pg.sql(db, "CREATE SCHEMA IF NOT EXISTS sales");
    for t in tables {
        pg.sql(db, &format!("CREATE TABLE {} ({})", t.fqn, t.columns));
        if t.rows > 0 {
            let fill = t.fill.replace("{n}", &(t.rows * scale()).to_string());
            pg.sql(db, &format!("INSERT INTO {} {fill}", t.fqn));
        }
    }
    pg.sql(db, "ANALYZE");
}

/// What gprestore starts from: the tables are gone (the metadata restore
/// recreates them).
pub fn drop_tables(pg: &Postgres, db: &str) {
    pg.sql(db, "DROP SCHEMA IF EXISTS sales CASCADE; DROP TABLE IF EXISTS public.events, public.empty_table");
}

/// Row count and an MD5 of every row, in id order, per table.
pub fn checksums(pg: &Postgres, db: &str, tables: &[&TableDef]) -> BTreeMap<String, String> {
    tables
        .iter()
        .map(|t| {
            let sum = pg.sql(
                db,
                &format!(
                    "SELECT count(*) || ' ' || coalesce(md5(string_agg(t::text, '|' ORDER BY id)), '-') FROM {} t",
                    t.fqn
                ),
            );
            (t.fqn.to_string(), sum)
        })
        .collect()
}

pub fn all_tables() -> Vec<&'static TableDef> {
    TABLES.iter().collect()
}
