"""The tables the platform exchanges, as one definition each: columns, types, Chinese labels.

The generator writes these tables, ingestion validates rows against them, and the feature
catalog names them as sources. ``date_column`` is the date a record became known to the
platform: point-in-time feature builds read only rows whose date is before the as-of date.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Column:
    name: str
    dtype: str  # DuckDB type
    label_zh: str
    nullable: bool = False
    allowed: tuple[str, ...] | None = None
    non_negative: bool = False
    # a date that may lie after the extraction date (a loan's maturity); other dates may not
    future_ok: bool = False


@dataclass(frozen=True)
class Table:
    name: str
    label_zh: str
    key: tuple[str, ...]
    date_column: str | None
    columns: tuple[Column, ...]
    # date columns that must not precede another date column of the same row: (later, earlier)
    date_order: tuple[tuple[str, str], ...] = field(default_factory=tuple)

    @property
    def column_names(self) -> list[str]:
        return [c.name for c in self.columns]

    def column(self, name: str) -> Column:
        return next(c for c in self.columns if c.name == name)


SEVERITIES = ("轻微", "一般", "较重", "严重")
ADVERSE_SEVERITIES = ("较重", "严重")
PENALTY_DOMAINS = (
    "市场监管",
    "生态环境",
    "税务",
    "安全生产",
    "交通运输",
    "住房城乡建设",
    "卫生健康",
    "人力资源社会保障",
)
COMMITMENT_TYPES = ("审批替代", "容缺受理", "主动自律", "信用修复")
COMMITMENT_OUTCOMES = ("履约", "违诺", "在途")
LIST_TYPES = ("严重失信主体名单", "失信被执行人")
SERIOUS_LIST = "严重失信主体名单"
EXECUTEE_LIST = "失信被执行人"
UTILITIES = ("water", "electricity", "gas")
SIZE_CLASSES = ("大型", "中型", "小型", "微型")
ENTITY_TYPES = ("企业", "个体工商户", "农民专业合作社")
# GB/T 4754-2017 sections
INDUSTRIES = ("A", "B", "C", "D", "E", "F", "G", "H", "I", "J", "K", "L", "M", "N", "O", "P", "Q", "R", "S")
LOAN_STATUSES = ("正常", "结清", "逾期", "违约")

_U = Column("uscc", "VARCHAR", "统一社会信用代码")

TABLES: dict[str, Table] = {
    t.name: t
    for t in (
        Table(
            "enterprises",
            "登记注册",
            key=("uscc",),
            date_column="registered_date",
            columns=(
                _U,
                Column("name", "VARCHAR", "名称"),
                Column("entity_type", "VARCHAR", "主体类型", allowed=ENTITY_TYPES),
                Column("industry", "VARCHAR", "行业门类(GB/T 4754)", allowed=INDUSTRIES),
                Column("division", "VARCHAR", "行政区划代码"),
                Column("registered_capital", "DOUBLE", "注册资本(元)", non_negative=True),
                Column("size_class", "VARCHAR", "企业规模", allowed=SIZE_CLASSES),
                Column("registered_date", "DATE", "成立日期"),
                Column("deregistered_date", "DATE", "注销日期", nullable=True),
            ),
            date_order=(("deregistered_date", "registered_date"),),
        ),
        Table(
            "tax_monthly",
            "纳税申报(月)",
            key=("uscc", "period"),
            date_column="filed_date",
            columns=(
                _U,
                Column("period", "DATE", "所属期"),
                Column("filed_date", "DATE", "申报日期"),
                Column("declared_sales", "DOUBLE", "申报销售额(元)", non_negative=True),
                Column("tax_paid", "DOUBLE", "实缴税额(元)", non_negative=True),
                Column("arrears", "DOUBLE", "欠税金额(元)", non_negative=True),
                Column("arrears_days", "INTEGER", "欠税天数", non_negative=True),
                Column("late_filing", "BOOLEAN", "逾期申报"),
            ),
            date_order=(("filed_date", "period"),),
        ),
        Table(
            "utility_monthly",
            "水电气缴费(月)",
            key=("uscc", "utility", "period"),
            date_column="bill_date",
            columns=(
                _U,
                Column("utility", "VARCHAR", "类别(水/电/气)", allowed=UTILITIES),
                Column("period", "DATE", "账期"),
                Column("bill_date", "DATE", "出账日期"),
                Column("usage", "DOUBLE", "用量", non_negative=True),
                Column("billed", "DOUBLE", "应缴金额(元)", non_negative=True),
                Column("paid", "DOUBLE", "实缴金额(元)", non_negative=True),
                Column("arrears", "DOUBLE", "欠费金额(元)", non_negative=True),
            ),
            date_order=(("bill_date", "period"),),
        ),
        Table(
            "social_insurance_monthly",
            "社保缴纳(月)",
            key=("uscc", "period"),
            date_column="report_date",
            columns=(
                _U,
                Column("period", "DATE", "所属期"),
                Column("report_date", "DATE", "报送日期"),
                Column("headcount", "INTEGER", "参保人数", non_negative=True),
                Column("arrears", "DOUBLE", "欠缴金额(元)", non_negative=True),
            ),
            date_order=(("report_date", "period"),),
        ),
        Table(
            "penalties",
            "行政处罚",
            key=("penalty_id",),
            date_column="decision_date",
            columns=(
                Column("penalty_id", "VARCHAR", "处罚决定书文号"),
                _U,
                Column("domain", "VARCHAR", "处罚领域", allowed=PENALTY_DOMAINS),
                Column("severity", "VARCHAR", "违法程度", allowed=SEVERITIES),
                Column("amount", "DOUBLE", "罚没金额(元)", non_negative=True),
                Column("decision_date", "DATE", "处罚决定日期"),
                Column("repair_date", "DATE", "信用修复日期", nullable=True),
            ),
            date_order=(("repair_date", "decision_date"),),
        ),
        Table(
            "commitments",
            "信用承诺",
            key=("commitment_id",),
            date_column="commit_date",
            columns=(
                Column("commitment_id", "VARCHAR", "承诺编号"),
                _U,
                Column("commitment_type", "VARCHAR", "承诺类型", allowed=COMMITMENT_TYPES),
                Column("commit_date", "DATE", "承诺日期"),
                Column("outcome", "VARCHAR", "履约状态", allowed=COMMITMENT_OUTCOMES),
                Column("outcome_date", "DATE", "履约认定日期", nullable=True),
            ),
            date_order=(("outcome_date", "commit_date"),),
        ),
        Table(
            "dishonesty_lists",
            "失信名单(严重失信主体名单/失信被执行人)",
            key=("list_entry_id",),
            date_column="entry_date",
            columns=(
                Column("list_entry_id", "VARCHAR", "名单记录编号"),
                _U,
                Column("list_type", "VARCHAR", "名单类型", allowed=LIST_TYPES),
                Column("entry_date", "DATE", "列入日期"),
                Column("exit_date", "DATE", "移出日期", nullable=True),
            ),
            date_order=(("exit_date", "entry_date"),),
        ),
        Table(
            "loans",
            "信易贷贷款及表现",
            key=("loan_id",),
            date_column="start_date",
            columns=(
                Column("loan_id", "VARCHAR", "贷款编号"),
                _U,
                Column("bank_id", "VARCHAR", "放款银行"),
                Column("start_date", "DATE", "放款日期"),
                Column("maturity_date", "DATE", "到期日期", future_ok=True),
                Column("amount", "DOUBLE", "贷款金额(元)", non_negative=True),
                Column("max_dpd", "INTEGER", "最长逾期天数", non_negative=True),
                Column("dpd90_date", "DATE", "逾期满90天日期", nullable=True),
                Column("settled_date", "DATE", "结清日期", nullable=True),
                Column("status", "VARCHAR", "贷款状态", allowed=LOAN_STATUSES),
            ),
            date_order=(("maturity_date", "start_date"), ("dpd90_date", "start_date"), ("settled_date", "start_date")),
        ),
        Table(
            "synthetic_truth",
            "合成数据真值(仅用于评估)",
            key=("uscc",),
            date_column=None,
            columns=(
                _U,
                Column("latent_risk", "DOUBLE", "隐含信用风险"),
                Column("monthly_hazard", "DOUBLE", "月度不良事件概率"),
                Column("p_adverse_12m", "DOUBLE", "未来12个月不良事件真实概率"),
            ),
        ),
    )
}

RECORD_TABLES = [name for name in TABLES if name not in ("enterprises", "synthetic_truth")]
