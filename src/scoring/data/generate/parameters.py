"""The make-up of the synthetic county: divisions, industry and size mix, coverage of each source, names."""

from __future__ import annotations

import numpy as np

DIVISIONS = ("341323", "341302", "341321", "341322", "341324")  # 宿州市: 灵璧县 and neighbours
DIVISION_WEIGHTS = (0.6, 0.1, 0.1, 0.1, 0.1)
INDUSTRY_WEIGHTS = np.array([3, 1, 18, 1, 1, 10, 28, 4, 8, 3, 1, 4, 4, 3, 3, 1, 1, 2, 4], dtype=float)
INDUSTRY_EFFECT = np.array(
    [0.2, 0.3, 0.1, -0.4, 0.0, 0.35, 0.05, 0.25, 0.3, -0.2, -0.3, 0.3, -0.25, 0.0, 0.1, -0.3, -0.3, 0.15, 0.1]
)
SIZE_WEIGHTS = np.array([0.02, 0.10, 0.28, 0.60])  # 大型 中型 小型 微型
SIZE_EFFECT = np.array([-0.6, -0.3, 0.0, 0.3])
SIZE_SALES = np.array([5e7, 5e6, 6e5, 6e4])  # typical monthly declared sales (CNY)
SIZE_HEADCOUNT = np.array([1500.0, 250.0, 35.0, 4.0])
TAX_COVERAGE = np.array([0.99, 0.97, 0.9, 0.6])
UTILITY_COVERAGE = {
    "electricity": np.array([0.99, 0.95, 0.85, 0.55]),
    "water": np.array([0.97, 0.9, 0.75, 0.45]),
    "gas": np.array([0.7, 0.45, 0.25, 0.12]),
}
SI_COVERAGE = np.array([0.99, 0.98, 0.9, 0.55])
HF_COVERAGE = np.array([0.97, 0.8, 0.45, 0.12])
REAL_ESTATE_RATE = np.array([1.5, 0.8, 0.3, 0.05])  # properties per enterprise
HIGHTECH_INDUSTRIES = ("C", "I", "M")
COURTS = (
    "灵璧县人民法院",
    "宿州市埇桥区人民法院",
    "泗县人民法院",
    "萧县人民法院",
    "砀山县人民法院",
    "宿州市中级人民法院",
)
UTILITY_PRICE = {"water": 4.1, "electricity": 0.75, "gas": 3.3}
BANKS = ("B3413001", "B3413002", "B3413003", "B3413004", "B3413005", "B3413006")
NAME_PLACES = ("灵璧", "宿州", "泗县", "萧县", "砀山", "埇桥", "虞姬", "尹集", "渔沟", "娄庄", "韦集", "冯庙")
NAME_WORDS = (
    "恒信",
    "华安",
    "瑞丰",
    "金诚",
    "宏达",
    "鑫源",
    "永泰",
    "润德",
    "广利",
    "盛世",
    "天成",
    "佳和",
    "博远",
    "兴旺",
    "正大",
    "美景",
    "新源",
    "同创",
    "汇通",
    "联发",
    "万和",
    "中诚",
    "安康",
    "丰禾",
)
NAME_TRADES = {
    "A": "农业",
    "B": "矿业",
    "C": "制造",
    "D": "电力",
    "E": "水务",
    "F": "建筑",
    "G": "商贸",
    "H": "物流",
    "I": "餐饮",
    "J": "信息技术",
    "K": "金融服务",
    "L": "置业",
    "M": "租赁",
    "N": "科技",
    "O": "环境",
    "P": "教育",
    "Q": "健康",
    "R": "文化",
    "S": "服务",
}
ADVERSE_KINDS = ("severe_penalty", "serious_list", "executee_list", "tax_arrears", "broken_commitment", "loan_default")
# a firm in distress with a bank loan running defaults on it first, as often as all other kinds together
ADVERSE_WEIGHTS = np.array([0.30, 0.07, 0.16, 0.20, 0.12, 0.85])
