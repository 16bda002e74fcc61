"""Synthetic platform data: a county or city of enterprises with a hidden creditworthiness.

Every enterprise gets a latent risk ``r`` (idiosyncratic part + industry + size effects). The
same ``r`` drives its everyday records (late filings, short arrears, light penalties, sales and
headcount trends) and the monthly hazard of an adverse credit event. Adverse events are drawn
month by month from that hazard alone and written as the records the label reads:
a 较重/严重 penalty, entry onto the 严重失信 or 失信被执行人 list, tax arrears past 90 days,
a broken commitment (违诺) or a loan 90+ days past due. Which kind an event takes depends only on
what the enterprise has at that moment (a loan, a pending commitment, tax records), never on
whether it happens, so the true probability ``1 - (1 - h)^k`` over ``k`` live months is exact
and its AUC is the best any model can reach (the oracle AUC).

Generation runs in chunks of enterprises with their own random streams, so memory stays
bounded and the output depends only on the seed and the size.

The modules, in the order a chunk is made: ``config`` (what to generate), ``parameters`` (the
county's make-up), ``chunk`` (one chunk's state), ``enterprises``, ``behaviour`` (monthly
amounts), ``events`` (penalties, commitments, loans, adverse events), the tables
(``monthly_tables``, ``credit_tables``, ``admin_tables``), then ``applications`` (the credit
applications banks approved and declined, and what each declined one would have done had it been
funded, drawn from streams of their own so that no other table depends on them), ``chunks`` (the
steps in order), ``corruption`` (injected errors) and ``writer`` (Parquet files and the manifest).
"""

from scoring.data.generate.chunks import iter_chunks
from scoring.data.generate.config import GeneratorConfig
from scoring.data.generate.writer import generate

__all__ = ["GeneratorConfig", "generate", "iter_chunks"]
