# ---
# jupyter:
#   jupytext:
#     formats: py:percent,ipynb
#     text_representation:
#       extension: .py
#       format_name: percent
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # 01 Explore the platform data
#
# What the warehouse holds after `scoring ingest`: rows per table, what was quarantined and why,
# how many live enterprises each source covers, and how often adverse credit events follow.
# Run it from the project folder (or set `SCORING_HOME`); it only reads the warehouse.

# %%
import duckdb
import pandas as pd

from scoring.settings import Settings

settings = Settings()
con = duckdb.connect(str(settings.warehouse_path), read_only=True)
extract_date = con.execute("SELECT value FROM meta WHERE key = 'extract_date'").fetchone()[0]
print(f"warehouse {settings.warehouse_path}, data extracted {extract_date}")

# %% [markdown]
# ## Loads and quarantine
# Every row read is loaded, unchanged, kept in history (a later line replaced it) or quarantined with
# its reason: nothing disappears. The full data-quality report of the load is in `load_reports`.

# %%
loads = con.execute(
    """SELECT table_name, rows_read, inserted, replaced, unchanged, duplicates_in_file, quarantined,
              round(100.0 * quarantined / rows_read, 4) AS pct_quarantined
       FROM loads WHERE load_id = (SELECT arg_max(load_id, loaded_at) FROM loads) ORDER BY table_name"""
).df()
accounted = loads[["inserted", "replaced", "unchanged", "duplicates_in_file", "quarantined"]].sum(axis=1)
assert (accounted == loads["rows_read"]).all()
loads

# %%
con.execute(
    "SELECT table_name, field, reason, count(*) AS n FROM quarantine GROUP BY ALL ORDER BY n DESC"
).df()

# %% [markdown]
# ## Coverage of each source among live enterprises
# Many micro firms have no tax or utility records; the model has to work without them.

# %%
coverage = con.execute(
    f"""WITH live AS (SELECT uscc, size_class FROM enterprises
                      WHERE deregistered_date IS NULL OR deregistered_date >= DATE '{extract_date}')
        SELECT size_class, count(*) AS enterprises,
               avg(CAST(uscc IN (SELECT uscc FROM tax_monthly) AS DOUBLE)) AS tax,
               avg(CAST(uscc IN (SELECT uscc FROM utility_monthly) AS DOUBLE)) AS utilities,
               avg(CAST(uscc IN (SELECT uscc FROM social_insurance_monthly) AS DOUBLE)) AS social_insurance
        FROM live GROUP BY size_class ORDER BY enterprises DESC"""
).df()
coverage

# %% [markdown]
# ## Adverse credit events per year and kind
# The label of the credit evaluation model: any of these in the 12 months after the as-of date.

# %%
from scoring.features.labels import adverse_event_sql

every_event = adverse_event_sql("DATE '1990-01-01'", f"DATE '{extract_date}'")
events = con.execute(
    f"SELECT year(event_date) AS year, kind, count(*) AS n FROM ({every_event}) GROUP BY ALL ORDER BY year, n DESC"
).df()
pd.pivot_table(events, index="kind", columns="year", values="n", fill_value=0)

# %%
con.close()
