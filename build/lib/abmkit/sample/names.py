"""Word lists and string helpers for realistic synthetic names (data, not logic).

Account names are ``<first> <second> [<descriptor>] <legal suffix>``; the domain is
built from the first two words so that every account gets a distinct domain base.
A few first words carry accents (the accounts export is cp1252-encoded, so every
character here must be representable in cp1252).

Example
-------
>>> ascii_fold(pd.Series(["Nordström", "Lumière"])).tolist()
['nordstrom', 'lumiere']
"""
from __future__ import annotations

import unicodedata

import numpy as np
import pandas as pd

FIRST_WORDS = (
    "Blue", "North", "Silver", "Granite", "Cedar", "Harbor", "Summit", "Iron", "Bright", "Clear",
    "Red", "Golden", "Maple", "Pine", "River", "Stone", "Sun", "Wild", "Oak", "Lake",
    "Falcon", "Eagle", "Fox", "Wolf", "Bear", "Orion", "Nova", "Polar", "Coral", "Aspen",
    "Copper", "Crystal", "Delta", "Echo", "Ember", "Frost", "Glacier", "Hawk", "Indigo", "Jade",
    "Kestrel", "Lumen", "Meridian", "Noble", "Onyx", "Pioneer", "Quartz", "Raven", "Sierra", "Terra",
    "Union", "Vertex", "Willow", "Zenith", "Atlas", "Beacon", "Cobalt", "Dune", "Evergreen", "Harvest",
    "Nordström", "Lumière", "Müller", "Señor", "Café", "Björn", "Côte", "Zürich",
)
SECOND_WORDS = (
    "Harbor", "Peak", "Ridge", "Field", "Bridge", "Gate", "Point", "Wave", "Line", "Path",
    "Works", "Forge", "Stream", "Rock", "Mill", "Crest", "Grove", "Haven", "Vale", "Port",
    "Light", "Star", "Wind", "Shore", "Wood", "Well", "Brook", "Hill", "Bay", "Dale",
    "Spring", "Stone", "Tower", "Arc", "Core", "Scale", "Sphere", "Shift", "Loop", "Track",
    "Base", "Cloud", "Code", "Data", "Logic", "Mark", "Net", "Pulse", "Quest", "Sync",
)
DESCRIPTORS = {
    "software": ("Software", "Systems", "Labs", "Technologies", "Cloud"),
    "financial_services": ("Capital", "Financial", "Partners", "Bank", "Insurance"),
    "manufacturing": ("Industries", "Manufacturing", "Components", "Engineering", "Materials"),
    "healthcare": ("Health", "Medical", "Therapeutics", "Care", "Diagnostics"),
    "retail": ("Retail", "Brands", "Stores", "Commerce", "Goods"),
    "logistics": ("Logistics", "Freight", "Transport", "Shipping", "Supply"),
    "professional_services": ("Consulting", "Advisory", "Group", "Solutions", "Services"),
    "education": ("Learning", "Education", "Academy", "Institute", "Training"),
}
INDUSTRIES = tuple(DESCRIPTORS)
INDUSTRY_WEIGHTS = (0.22, 0.14, 0.16, 0.12, 0.10, 0.08, 0.12, 0.06)

# region -> (country code, registrable suffix, legal suffixes, weight inside region)
COUNTRIES = {
    "us": ("North America", "com", ("Inc.", "LLC", "Corp.", "Inc."), 0.50),
    "ca": ("North America", "ca", ("Inc.", "Ltd."), 0.06),
    "uk": ("EMEA", "co.uk", ("Ltd", "plc", "Limited"), 0.12),
    "de": ("EMEA", "de", ("GmbH", "AG"), 0.09),
    "fr": ("EMEA", "fr", ("SA", "SAS"), 0.05),
    "nl": ("EMEA", "nl", ("B.V.", "N.V."), 0.04),
    "au": ("APAC", "com.au", ("Pty Ltd",), 0.06),
    "sg": ("APAC", "com.sg", ("Pte. Ltd.",), 0.03),
    "br": ("LATAM", "com.br", ("Ltda.", "S.A."), 0.05),
}
# legal suffix variants contacts type into a "Company" field instead of the official one
LEGAL_VARIANTS = {
    "Inc.": ("Inc", ", Inc.", "Incorporated", ""), "LLC": ("L.L.C.", ", LLC", ""),
    "Corp.": ("Corporation", "Corp", ""), "Ltd.": ("Ltd", "Limited", ""), "Ltd": ("Limited", "Ltd.", ""),
    "plc": ("PLC", ""), "Limited": ("Ltd", ""), "GmbH": ("Gmbh", "GMBH", ""), "AG": ("",),
    "SA": ("S.A.", ""), "SAS": ("S.A.S.", ""), "B.V.": ("BV", ""), "N.V.": ("NV", ""),
    "Pty Ltd": ("Pty. Ltd.", "Pty Limited", ""), "Pte. Ltd.": ("Pte Ltd", ""), "Ltda.": ("Ltda", ""),
    "S.A.": ("SA", ""),
}
# sibling names that create genuine ambiguity ("Acme Corp" vs "Acme Group")
SIBLING_DESCRIPTORS = ("Group", "Holdings", "International", "Global")

FIRST_NAMES = (
    "James", "Mary", "John", "Patricia", "Robert", "Jennifer", "Michael", "Linda", "David", "Elizabeth",
    "William", "Barbara", "Richard", "Susan", "Joseph", "Jessica", "Thomas", "Sarah", "Chris", "Karen",
    "Daniel", "Lisa", "Matthew", "Nancy", "Anthony", "Sandra", "Mark", "Ashley", "Steven", "Emily",
    "Paul", "Michelle", "Andrew", "Amanda", "Kevin", "Melissa", "Brian", "Laura", "George", "Rebecca",
    "José", "Zoë", "Renée", "Jürgen", "François", "Søren", "Inés", "Håkon", "Chloé", "Björn",
    "Priya", "Wei", "Hiroshi", "Aisha", "Mateo", "Olga", "Lars", "Fatima", "Noah", "Amara",
)
LAST_NAMES = (
    "Smith", "Johnson", "Williams", "Brown", "Jones", "Garcia", "Miller", "Davis", "Rodriguez", "Martinez",
    "Hernandez", "Lopez", "Gonzalez", "Wilson", "Anderson", "Thomas", "Taylor", "Moore", "Jackson", "Martin",
    "Lee", "Perez", "Thompson", "White", "Harris", "Sanchez", "Clark", "Ramirez", "Lewis", "Robinson",
    "Müller", "Schäfer", "Dubois", "Lefèvre", "O'Brien", "Núñez", "Østergaard", "Kowalski", "Nakamura", "Patel",
    "Chen", "Singh", "Kim", "Nguyen", "Rossi", "Jansen", "de Vries", "Svensson", "Dupont", "Fischer",
)
TITLES = {
    "decision_maker": ("Chief Marketing Officer", "VP Marketing", "VP Sales", "CFO", "Head of Operations",
                       "Director of IT", "Chief Revenue Officer", "VP Engineering"),
    "influencer": ("Marketing Manager", "Senior Product Manager", "IT Manager", "Revenue Operations Manager",
                   "Demand Generation Lead", "Procurement Manager"),
    "user": ("Marketing Specialist", "Sales Development Rep", "Data Analyst", "Software Engineer",
             "Operations Coordinator", "Account Executive"),
    "other": ("Intern", "Executive Assistant", "Student", "Consultant"),
}
FREE_MAIL = ("gmail.com", "outlook.com", "yahoo.com", "hotmail.com", "icloud.com", "gmx.de", "aol.com")
SUBDOMAIN_PREFIXES = ("mail", "eu", "us", "corp", "uk", "info")
NO_ACCOUNT_COMPANIES = ("", "Student", "Freelance", "Self-employed", "n/a", "University of Leeds",
                        "Independent Consultant")


def ascii_fold(values: pd.Series) -> pd.Series:
    """Lower-case ASCII form (accents dropped, spaces and apostrophes removed) for
    e-mail local parts and domains."""
    uniq = pd.unique(values)
    folded = {
        u: unicodedata.normalize("NFKD", u).encode("ascii", "ignore").decode().lower()
        .replace(" ", "").replace("'", "")
        for u in uniq
    }
    return values.map(folded)


def typo(values: pd.Series, rng: np.random.Generator) -> pd.Series:
    """Swap two adjacent letters at a random position inside a word of length ≥ 5
    (a realistic keyboard slip that fuzzy matching should still recover)."""
    arr = values.to_numpy(dtype=object)
    pos = rng.random(len(arr))
    out = []
    for text, u in zip(arr, pos):  # a few hundred short strings: plain Python is clearest
        i = 1 + int(u * max(len(text) - 3, 1))
        if len(text) >= 5 and text[i].isalpha() and text[i + 1].isalpha():
            text = text[:i] + text[i + 1] + text[i] + text[i + 2:]
        out.append(text)
    return pd.Series(out, index=values.index, dtype=object)


def pick_by_group(keys: np.ndarray, table: dict, u: np.ndarray) -> np.ndarray:
    """For each row, the option ``floor(u · k)`` of ``table[key]`` (k options): a
    vectorised per-group choice (loops over the few groups, not the rows)."""
    out = np.empty(len(keys), dtype=object)
    for key, options in table.items():
        sel = keys == key
        opts = np.asarray(options if isinstance(options, tuple) else (options,), dtype=object)
        out[sel] = opts[np.minimum((u[sel] * len(opts)).astype(int), len(opts) - 1)]
    return out


def lookup(keys: np.ndarray, mapping: dict) -> np.ndarray:
    """``mapping[key]`` per row (vectorised)."""
    return pd.Series(keys, dtype=object).map(mapping).to_numpy(dtype=object)


def make_ids(prefix: str, numbers: np.ndarray, width: int) -> np.ndarray:
    """Zero-padded string ids: ``make_ids("A", [1, 2], 5)`` -> ['A00001', 'A00002']."""
    numbers = np.asarray(numbers)
    if not len(numbers):
        return np.array([], dtype=object)
    digits = np.char.zfill(numbers.astype(str), width)
    return np.char.add(prefix, digits).astype(object)
