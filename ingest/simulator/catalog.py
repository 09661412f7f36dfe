"""Reference data: countries and their UTC offsets, address blocks, user agents, e-mail domains.

Every population draws from these same lists, so no value exists only for one population.
"""

from __future__ import annotations

# country -> (share of sign-ups, UTC offsets in hours it spans, first octets of home networks)
COUNTRIES: dict[str, tuple[float, tuple[float, ...], tuple[int, ...]]] = {
    "US": (0.30, (-5.0, -6.0, -7.0, -8.0), (24, 67, 68, 71, 73, 98, 174)),
    "IN": (0.09, (5.5,), (49, 106, 117, 223)),
    "GB": (0.06, (0.0,), (81, 86, 92)),
    "DE": (0.06, (1.0,), (79, 84, 91)),
    "BR": (0.05, (-3.0,), (177, 187, 189)),
    "CA": (0.04, (-5.0, -8.0), (70, 99, 142)),
    "FR": (0.04, (1.0,), (82, 90, 109)),
    "JP": (0.04, (9.0,), (114, 126, 153)),
    "KR": (0.03, (9.0,), (121, 175, 211)),
    "SG": (0.03, (8.0,), (116, 118, 202)),
    "AU": (0.03, (10.0,), (101, 110, 124)),
    "NL": (0.03, (1.0,), (77, 83, 145)),
    "ES": (0.03, (1.0,), (80, 83, 88)),
    "IT": (0.03, (1.0,), (79, 87, 93)),
    "PL": (0.02, (1.0,), (78, 89, 178)),
    "MX": (0.02, (-6.0,), (187, 189, 201)),
    "ID": (0.02, (7.0,), (36, 114, 180)),
    "NG": (0.02, (1.0,), (102, 105, 197)),
    "TR": (0.02, (3.0,), (78, 85, 88)),
    "VN": (0.02, (7.0,), (14, 113, 171)),
    "SE": (0.02, (1.0,), (83, 90, 94)),
    "IL": (0.02, (2.0,), (31, 79, 84)),
}

# first two octets of cloud / hosting address space (where servers and datacenter proxies live)
DATACENTER_PREFIXES: tuple[tuple[int, int], ...] = (
    (3, 80), (18, 204), (34, 82), (34, 136), (35, 185), (35, 230), (52, 14), (52, 90), (54, 166),
    (54, 210), (20, 62), (40, 114), (104, 131), (138, 68), (159, 89), (167, 99), (5, 161),
    (65, 108), (88, 198), (116, 202), (51, 68), (141, 95),
)  # fmt: skip

FREE_MAIL: dict[str, float] = {
    "gmail.com": 0.55,
    "outlook.com": 0.12,
    "hotmail.com": 0.07,
    "yahoo.com": 0.07,
    "icloud.com": 0.08,
    "proton.me": 0.04,
    "gmx.de": 0.02,
    "qq.com": 0.02,
    "naver.com": 0.02,
    "mail.ru": 0.01,
}

# client families: (user agent format, versions oldest first, endpoint it implies or None, share)
_CLIENTS: tuple[tuple[str, tuple[str, ...], str | None, float], ...] = (
    ("OpenAI/Python {v}", ("1.51.2", "1.54.3", "1.57.0", "1.59.7", "1.61.1", "1.63.2"),
     "/v1/chat/completions", 0.22),
    ("AsyncOpenAI/Python {v}", ("1.54.3", "1.59.7", "1.63.2"), "/v1/chat/completions", 0.05),
    ("OpenAI/JS {v}", ("4.67.3", "4.73.0", "4.77.4", "4.85.1"), "/v1/chat/completions", 0.07),
    ("Anthropic/Python {v}", ("0.37.1", "0.39.0", "0.42.0", "0.45.2"), "/v1/messages", 0.09),
    ("Anthropic/JS {v}", ("0.30.1", "0.33.1", "0.36.3"), "/v1/messages", 0.03),
    ("python-requests/{v}", ("2.31.0", "2.32.3"), None, 0.05),
    ("python-httpx/{v}", ("0.27.0", "0.27.2", "0.28.1"), None, 0.03),
    ("curl/{v}", ("7.81.0", "8.5.0", "8.7.1"), None, 0.02),
    ("axios/{v}", ("1.6.8", "1.7.7"), None, 0.015),
    ("Go-http-client/{v}", ("1.1", "2.0"), None, 0.01),
    ("Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
     "Chrome/{v}.0.0.0 Safari/537.36", ("128", "129", "130", "131"), None, 0.16),
    ("Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like Gecko) "
     "Chrome/{v}.0.0.0 Safari/537.36", ("128", "129", "130", "131"), None, 0.12),
    ("Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
     "Chrome/{v}.0.0.0 Safari/537.36", ("129", "130", "131"), None, 0.02),
    ("Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:{v}.0) Gecko/20100101 Firefox/{v}.0",
     ("130", "131", "132"), None, 0.03),
    ("Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) "
     "Version/{v} Safari/605.1.15", ("17.6", "18.0", "18.1"), None, 0.05),
)  # fmt: skip


def user_agents() -> tuple[list[str], list[str | None], list[bool], list[float]]:
    """Every user agent: the string, the endpoint it implies (None: either), is-browser, share.

    Inside a family newer versions are more common (weights 1, 2, 3, ... then normalised).
    """
    names: list[str] = []
    endpoints: list[str | None] = []
    browser: list[bool] = []
    shares: list[float] = []
    for fmt, versions, endpoint, share in _CLIENTS:
        ramp = list(range(1, len(versions) + 1))
        for version, weight in zip(versions, ramp, strict=True):
            names.append(fmt.format(v=version))
            endpoints.append(endpoint)
            browser.append(fmt.startswith("Mozilla/"))
            shares.append(share * weight / sum(ramp))
    return names, endpoints, browser, shares


SYSTEM_PROMPTS_PEOPLE: tuple[str, ...] = (
    "You are a helpful assistant.",
    "You are a helpful assistant. Answer concisely.",
    "Be brief and direct. Use bullet points where it helps.",
    "You are an expert software engineer. Prefer idiomatic, tested code.",
    "Reply in a friendly, informal tone.",
)

COMPANY_WORDS = (
    "bright", "north", "blue", "iron", "cedar", "summit", "vector", "harbor", "quant", "lumen",
    "pixel", "atlas", "delta", "nimbus", "orbit", "crescent", "granite", "willow", "apex", "signal",
)  # fmt: skip
COMPANY_SUFFIX = ("labs", "analytics", "health", "systems", "works", "ai", "data", "bio", "cloud")
TLDS = ("com", "io", "co", "ai", "net", "de", "co.uk")
UNIVERSITIES = (
    "stateu", "techinst", "polytech", "uni-north", "cityuniv", "riverside-college", "lakeshore",
    "westfield", "eastbay", "hillcrest",
)  # fmt: skip

ORG_SYSTEM_PROMPTS: tuple[str, ...] = (
    "You are an internal assistant for {org}. Answer using company style: short and factual.",
    "You help {org} engineers review code and write documentation.",
    "You draft customer-facing replies for {org} support. Be polite and precise.",
    "You are {org}'s analytics assistant. Explain numbers plainly.",
)
