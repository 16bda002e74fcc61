"""The data contract: every table the platform exchanges, defined once in code.

Each table has its columns (type, Chinese label, nullability, allowed values, accepted header
aliases), its natural key and the date a record became known to the platform (``date_column``):
point-in-time feature builds read only rows whose date is before the as-of date. The generator
writes these tables, ingestion validates and maps files against them, the feature catalog names
them as sources, and ``scoring contract`` renders them to docs/data-contract.md.
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
    # further header names that exchange files use for this column (besides name and label_zh)
    aliases: tuple[str, ...] = ()


@dataclass(frozen=True)
class Table:
    name: str
    label_zh: str
    key: tuple[str, ...]
    date_column: str | None
    columns: tuple[Column, ...]
    description: str = ""
    # date columns that must not precede another date column of the same row: (later, earlier)
    date_order: tuple[tuple[str, str], ...] = field(default_factory=tuple)
    # synthetic tables carry the generator's truth; they exist only in generated data
    synthetic: bool = False

    @property
    def column_names(self) -> list[str]:
        return [c.name for c in self.columns]

    def column(self, name: str) -> Column:
        return next(c for c in self.columns if c.name == name)

    def header_map(self) -> dict[str, str]:
        """Every accepted header (English name, Chinese label, aliases; case-insensitive) -> column."""
        out: dict[str, str] = {}
        for c in self.columns:
            for h in (c.name, c.label_zh, *c.aliases):
                out[h.strip().lower()] = c.name
        return out


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
LICENSE_TYPES = (
    "食品经营许可",
    "建筑施工许可",
    "排污许可",
    "道路运输经营许可",
    "危险化学品经营许可",
    "药品经营许可",
    "其他许可",
)
ACTION_TYPES = ("行政强制", "行政奖励", "行政确认", "行政检查")
ACTION_RESULTS = ("合格", "基本合格", "不合格", "责令整改", "表彰奖励", "查封扣押", "冻结存款", "确认登记")
COMMITMENT_TYPES = ("审批替代", "容缺受理", "主动自律", "信用修复")
COMMITMENT_OUTCOMES = ("履约", "违诺", "在途")
LIST_EXIT_REASONS = ("期满移出", "信用修复", "撤销")
TAX_RATINGS = ("A", "B", "M", "C", "D")
UTILITIES = ("water", "electricity", "gas")
SIZE_CLASSES = ("大型", "中型", "小型", "微型")
ENTITY_TYPES = ("企业", "个体工商户", "农民专业合作社")
STATUSES = ("存续", "吊销", "注销")
PROPERTY_TYPES = ("土地", "厂房", "商业用房", "办公用房", "住宅")
PATENT_TYPES = ("发明", "实用新型", "外观设计")
# GB/T 4754-2017 sections
INDUSTRIES = ("A", "B", "C", "D", "E", "F", "G", "H", "I", "J", "K", "L", "M", "N", "O", "P", "Q", "R", "S")
INDUSTRY_NAMES = {
    "A": "农、林、牧、渔业",
    "B": "采矿业",
    "C": "制造业",
    "D": "电力、热力、燃气及水生产和供应业",
    "E": "建筑业",
    "F": "批发和零售业",
    "G": "交通运输、仓储和邮政业",
    "H": "住宿和餐饮业",
    "I": "信息传输、软件和信息技术服务业",
    "J": "金融业",
    "K": "房地产业",
    "L": "租赁和商务服务业",
    "M": "科学研究和技术服务业",
    "N": "水利、环境和公共设施管理业",
    "O": "居民服务、修理和其他服务业",
    "P": "教育",
    "Q": "卫生和社会工作",
    "R": "文化、体育和娱乐业",
    "S": "公共管理、社会保障和社会组织",
}
LOAN_STATUSES = ("正常", "结清", "逾期", "违约")
APPLICATION_DECISIONS = ("批准", "拒绝")
OBJECTION_RESULTS = ("更正", "维持", "删除")

_U = Column("uscc", "VARCHAR", "统一社会信用代码", aliases=("社会信用代码", "信用代码", "credit_code"))

TABLES: dict[str, Table] = {
    t.name: t
    for t in (
        Table(
            "enterprises",
            "登记注册",
            key=("uscc",),
            date_column="registered_date",
            description="市场主体登记信息，每个主体一行。",
            columns=(
                _U,
                Column("name", "VARCHAR", "名称", aliases=("企业名称", "主体名称")),
                Column("entity_type", "VARCHAR", "主体类型", allowed=ENTITY_TYPES),
                Column("industry", "VARCHAR", "行业门类(GB/T 4754)", allowed=INDUSTRIES, aliases=("行业门类",)),
                Column("division", "VARCHAR", "行政区划代码", aliases=("区划代码",)),
                Column("registered_capital", "DOUBLE", "注册资本(元)", non_negative=True, aliases=("注册资本",)),
                Column("size_class", "VARCHAR", "企业规模", allowed=SIZE_CLASSES),
                Column("status", "VARCHAR", "登记状态", allowed=STATUSES),
                Column("registered_date", "DATE", "成立日期"),
                Column("deregistered_date", "DATE", "注销吊销日期", nullable=True, aliases=("注销日期",)),
            ),
            date_order=(("deregistered_date", "registered_date"),),
        ),
        Table(
            "licenses",
            "行政许可",
            key=("license_id",),
            date_column="issued_date",
            description="行政许可决定。",
            columns=(
                Column("license_id", "VARCHAR", "许可文书号"),
                _U,
                Column("license_type", "VARCHAR", "许可类别", allowed=LICENSE_TYPES),
                Column("issued_date", "DATE", "许可决定日期"),
                Column("valid_until", "DATE", "有效期至", future_ok=True),
                Column("revoked_date", "DATE", "撤销注销日期", nullable=True),
            ),
            date_order=(("valid_until", "issued_date"), ("revoked_date", "issued_date")),
        ),
        Table(
            "penalties",
            "行政处罚",
            key=("penalty_id",),
            date_column="decision_date",
            description="行政处罚决定；信用修复后自修复日期起不再公示、不再使用。",
            columns=(
                Column("penalty_id", "VARCHAR", "处罚决定书文号", aliases=("决定书文号",)),
                _U,
                Column("domain", "VARCHAR", "处罚领域", allowed=PENALTY_DOMAINS),
                Column("severity", "VARCHAR", "违法程度", allowed=SEVERITIES),
                Column("amount", "DOUBLE", "罚没金额(元)", non_negative=True, aliases=("罚没金额",)),
                Column("decision_date", "DATE", "处罚决定日期"),
                Column("publicity_end_date", "DATE", "公示截止日期", future_ok=True),
                Column("repair_date", "DATE", "信用修复日期", nullable=True),
            ),
            date_order=(("publicity_end_date", "decision_date"), ("repair_date", "decision_date")),
        ),
        Table(
            "admin_actions",
            "其他行政行为(强制、奖励、确认、检查)",
            key=("action_id",),
            date_column="action_date",
            description="行政强制、行政奖励、行政确认、行政检查结果。",
            columns=(
                Column("action_id", "VARCHAR", "文书编号"),
                _U,
                Column("action_type", "VARCHAR", "行为类别", allowed=ACTION_TYPES),
                Column("domain", "VARCHAR", "领域", allowed=PENALTY_DOMAINS),
                Column("action_date", "DATE", "作出日期"),
                Column("result", "VARCHAR", "结果", allowed=ACTION_RESULTS),
            ),
        ),
        Table(
            "executee_list",
            "失信被执行人",
            key=("case_no",),
            date_column="entry_date",
            description="人民法院公布的失信被执行人名单。",
            columns=(
                Column("case_no", "VARCHAR", "案号"),
                _U,
                Column("court", "VARCHAR", "执行法院"),
                Column("obligation_amount", "DOUBLE", "未履行金额(元)", non_negative=True),
                Column("entry_date", "DATE", "列入日期", aliases=("发布日期",)),
                Column("exit_date", "DATE", "移出日期", nullable=True),
            ),
            date_order=(("exit_date", "entry_date"),),
        ),
        Table(
            "serious_dishonesty_list",
            "严重失信主体名单",
            key=("list_entry_id",),
            date_column="entry_date",
            description="严重失信主体名单的列入与移出。",
            columns=(
                Column("list_entry_id", "VARCHAR", "名单记录编号"),
                _U,
                Column("domain", "VARCHAR", "认定领域", allowed=PENALTY_DOMAINS),
                Column("entry_date", "DATE", "列入日期"),
                Column("exit_date", "DATE", "移出日期", nullable=True),
                Column("exit_reason", "VARCHAR", "移出原因", nullable=True, allowed=LIST_EXIT_REASONS),
            ),
            date_order=(("exit_date", "entry_date"),),
        ),
        Table(
            "commitments",
            "信用承诺",
            key=("commitment_id",),
            date_column="commit_date",
            description="信用承诺及其履约认定；结果在认定日期之前为在途。",
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
            "tax_monthly",
            "纳税申报(月)",
            key=("uscc", "period"),
            date_column="filed_date",
            description="按月纳税申报与缴纳；记录在申报日期为平台所知。",
            columns=(
                _U,
                Column("period", "DATE", "所属期", aliases=("税款所属期",)),
                Column("filed_date", "DATE", "申报日期"),
                Column("declared_sales", "DOUBLE", "申报销售额(元)", non_negative=True, aliases=("申报销售额",)),
                Column("tax_paid", "DOUBLE", "实缴税额(元)", non_negative=True, aliases=("实缴税额",)),
                Column("arrears", "DOUBLE", "欠税金额(元)", non_negative=True, aliases=("欠税金额",)),
                Column("arrears_days", "INTEGER", "欠税天数", non_negative=True),
                Column("late_filing", "BOOLEAN", "逾期申报"),
            ),
            date_order=(("filed_date", "period"),),
        ),
        Table(
            "tax_ratings",
            "纳税信用等级(年)",
            key=("uscc", "year"),
            date_column="rated_date",
            description="税务机关每年评定并发布的纳税信用等级 A/B/M/C/D。",
            columns=(
                _U,
                Column("year", "INTEGER", "评价年度"),
                Column("rating", "VARCHAR", "纳税信用等级", allowed=TAX_RATINGS),
                Column("rated_date", "DATE", "发布日期"),
            ),
        ),
        Table(
            "utility_monthly",
            "水电气缴费(月)",
            key=("uscc", "utility", "period"),
            date_column="bill_date",
            description="按月用水、用电、用气与缴费；记录在出账日期为平台所知。",
            columns=(
                _U,
                Column("utility", "VARCHAR", "类别(水/电/气)", allowed=UTILITIES, aliases=("类别",)),
                Column("period", "DATE", "账期"),
                Column("bill_date", "DATE", "出账日期"),
                Column("usage", "DOUBLE", "用量", non_negative=True),
                Column("billed", "DOUBLE", "应缴金额(元)", non_negative=True, aliases=("应缴金额",)),
                Column("paid", "DOUBLE", "实缴金额(元)", non_negative=True, aliases=("实缴金额",)),
                Column("arrears", "DOUBLE", "欠费金额(元)", non_negative=True, aliases=("欠费金额",)),
            ),
            date_order=(("bill_date", "period"),),
        ),
        Table(
            "social_insurance_monthly",
            "社保缴纳(月)",
            key=("uscc", "period"),
            date_column="report_date",
            description="按月社会保险参保人数与欠缴。",
            columns=(
                _U,
                Column("period", "DATE", "所属期"),
                Column("report_date", "DATE", "报送日期"),
                Column("headcount", "INTEGER", "参保人数", non_negative=True),
                Column("arrears", "DOUBLE", "欠缴金额(元)", non_negative=True, aliases=("欠缴金额",)),
            ),
            date_order=(("report_date", "period"),),
        ),
        Table(
            "housing_fund_monthly",
            "住房公积金缴存(月)",
            key=("uscc", "period"),
            date_column="report_date",
            description="按月住房公积金缴存人数、缴存额与欠缴。",
            columns=(
                _U,
                Column("period", "DATE", "所属期"),
                Column("report_date", "DATE", "报送日期"),
                Column("payers", "INTEGER", "缴存人数", non_negative=True),
                Column("paid", "DOUBLE", "缴存金额(元)", non_negative=True, aliases=("缴存金额",)),
                Column("arrears", "DOUBLE", "欠缴金额(元)", non_negative=True, aliases=("欠缴金额",)),
            ),
            date_order=(("report_date", "period"),),
        ),
        Table(
            "real_estate",
            "不动产登记",
            key=("property_id",),
            date_column="registered_date",
            description="不动产权登记，及其抵押、查封。",
            columns=(
                Column("property_id", "VARCHAR", "不动产权证号"),
                _U,
                Column("property_type", "VARCHAR", "不动产类型", allowed=PROPERTY_TYPES),
                Column("area_m2", "DOUBLE", "面积(平方米)", non_negative=True, aliases=("面积",)),
                Column("registered_date", "DATE", "登记日期"),
                Column("mortgage_date", "DATE", "抵押登记日期", nullable=True),
                Column("seizure_date", "DATE", "查封登记日期", nullable=True),
            ),
            date_order=(("mortgage_date", "registered_date"), ("seizure_date", "registered_date")),
        ),
        Table(
            "hightech_certificates",
            "高新技术企业认定",
            key=("certificate_no",),
            date_column="certified_date",
            description="科技研发：高新技术企业认定证书。",
            columns=(
                Column("certificate_no", "VARCHAR", "证书编号"),
                _U,
                Column("certified_date", "DATE", "认定日期"),
                Column("expiry_date", "DATE", "有效期至", future_ok=True),
            ),
            date_order=(("expiry_date", "certified_date"),),
        ),
        Table(
            "patents",
            "专利授权",
            key=("patent_no",),
            date_column="granted_date",
            description="科技研发：授权专利。",
            columns=(
                Column("patent_no", "VARCHAR", "专利号"),
                _U,
                Column("patent_type", "VARCHAR", "专利类型", allowed=PATENT_TYPES),
                Column("granted_date", "DATE", "授权公告日"),
            ),
        ),
        Table(
            "loans",
            "信易贷贷款及表现",
            key=("loan_id",),
            date_column="start_date",
            description="银行报送的信易贷放款及其表现；逾期满90天日期为不良事件日期。",
            columns=(
                Column("loan_id", "VARCHAR", "贷款编号"),
                _U,
                Column("bank_id", "VARCHAR", "放款银行"),
                Column("start_date", "DATE", "放款日期"),
                Column("term_months", "INTEGER", "期限(月)", non_negative=True),
                Column("maturity_date", "DATE", "到期日期", future_ok=True),
                Column("amount", "DOUBLE", "贷款金额(元)", non_negative=True, aliases=("贷款金额",)),
                Column("max_dpd", "INTEGER", "最长逾期天数", non_negative=True),
                Column("dpd90_date", "DATE", "逾期满90天日期", nullable=True),
                Column("settled_date", "DATE", "结清日期", nullable=True),
                Column("status", "VARCHAR", "贷款状态", allowed=LOAN_STATUSES),
            ),
            date_order=(("maturity_date", "start_date"), ("dpd90_date", "start_date"), ("settled_date", "start_date")),
        ),
        Table(
            "loan_applications",
            "信易贷授信申请及审批结果",
            key=("application_id",),
            date_column="decision_date",
            description=(
                "银行报送的信易贷授信申请及审批结果(批准或拒绝)；申请与审批结果在审批日期一并为平台所知。"
                "批准的申请对应一笔贷款，被拒的申请没有贷款，也就没有表现。"
            ),
            columns=(
                Column("application_id", "VARCHAR", "申请编号", aliases=("授信申请编号",)),
                _U,
                Column("bank_id", "VARCHAR", "受理银行"),
                Column("applied_date", "DATE", "申请日期"),
                Column("requested_amount", "DOUBLE", "申请金额(元)", non_negative=True, aliases=("申请金额",)),
                Column("requested_term_months", "INTEGER", "申请期限(月)", non_negative=True),
                Column("decision", "VARCHAR", "审批结果", allowed=APPLICATION_DECISIONS),
                Column("decision_date", "DATE", "审批日期"),
                Column("loan_id", "VARCHAR", "贷款编号", nullable=True),
            ),
            date_order=(("decision_date", "applied_date"),),
        ),
        Table(
            "objections",
            "异议处理",
            key=("objection_id",),
            date_column="raised_date",
            description="主体对一条记录提出异议：自提出之日起标记为异议中，须在20日内更正、维持或删除。",
            columns=(
                Column("objection_id", "VARCHAR", "异议编号"),
                _U,
                Column("record_table", "VARCHAR", "异议记录所在表"),
                Column("record_id", "VARCHAR", "异议记录编号"),
                Column("raised_date", "DATE", "提出日期"),
                Column("resolved_date", "DATE", "办结日期", nullable=True),
                Column("result", "VARCHAR", "处理结果", nullable=True, allowed=OBJECTION_RESULTS),
            ),
            date_order=(("resolved_date", "raised_date"),),
        ),
        Table(
            "synthetic_truth",
            "合成数据真值(仅用于评估)",
            key=("uscc",),
            date_column=None,
            synthetic=True,
            description="生成器写入的隐含风险与月度不良事件概率；真实平台数据没有此表。",
            columns=(
                _U,
                Column("latent_risk", "DOUBLE", "隐含信用风险"),
                Column("monthly_hazard", "DOUBLE", "月度不良事件概率(无冲击时)"),
                Column("p_adverse_12m", "DOUBLE", "未来12个月不良事件真实概率(无冲击时)"),
            ),
        ),
        Table(
            "synthetic_regimes",
            "合成数据行业冲击(仅用于评估)",
            key=("industry", "start_month"),
            date_column=None,
            synthetic=True,
            description="生成器设置的行业冲击：期间内该行业隐含风险整体上移。",
            columns=(
                Column("industry", "VARCHAR", "行业门类", allowed=INDUSTRIES),
                Column("start_month", "DATE", "开始月份"),
                Column("end_month", "DATE", "结束月份(不含)", future_ok=True),
                Column("risk_shift", "DOUBLE", "隐含风险上移量"),
                Column("logit_shift", "DOUBLE", "月度不良事件概率的对数几率上移量"),
            ),
        ),
        Table(
            "synthetic_declined_outcomes",
            "合成数据被拒申请的反事实结果(仅用于评估)",
            key=("application_id",),
            date_column=None,
            synthetic=True,
            description=(
                "生成器写入的被拒授信申请的反事实结果：若在审批日期放款，是否会在12个月内逾期满90天。"
                "用于度量只从已放款贷款学习的偏差(拒绝推断)；真实平台数据没有此表。"
            ),
            columns=(
                Column("application_id", "VARCHAR", "申请编号"),
                _U,
                Column("would_default_12m", "BOOLEAN", "若放款12个月内是否逾期满90天"),
                Column("would_dpd90_date", "DATE", "若放款的逾期满90天日期", nullable=True),
            ),
        ),
    )
}

# records about an enterprise (everything but registration and the generator's truth)
RECORD_TABLES = [name for name, t in TABLES.items() if name != "enterprises" and not t.synthetic]
# tables whose single-column key an objection (异议) can name
DISPUTABLE_TABLES = [name for name in RECORD_TABLES if len(TABLES[name].key) == 1 and name != "objections"]
