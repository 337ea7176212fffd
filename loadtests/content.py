"""Plausible task content, shared by the seed and the scenario (Locust-free).

Titles are built from small vocabularies so that the scenario's `q=` searches hit real rows,
the way a user searches for words they remember writing.
"""

from __future__ import annotations

import random
from typing import Any

VERBS = (
    "Write", "Review", "Call", "Plan", "Fix", "Buy", "Prepare", "Send", "Book", "Clean",
    "Update", "Draft", "Check", "Pay", "Organise", "Renew", "Schedule", "Return", "Order", "Email",
)  # fmt: skip
OBJECTS = (
    "quarterly report", "dentist appointment", "groceries", "invoice", "team retro",
    "tax return", "garden shed", "flight to Lisbon", "birthday gift", "release notes",
    "budget", "car service", "gym plan", "newsletter", "backup disks", "insurance policy",
    "conference talk", "landlord", "library books", "passport", "onboarding checklist",
    "bike repair", "school forms", "project roadmap", "photo album",
)  # fmt: skip
SEARCH_TERMS = ("report", "invoice", "groceries", "budget", "passport", "retro", "lisbon", "gift")
"""Words that occur in seeded titles; `q=` matches them case-insensitively."""

DETAILS = (
    "Before the end of the week.", "Ask Sam first.", "Needs the receipts from March.",
    "Check the shared drive for the template.", "Low effort, do it on the train.",
    "Blocked until the quote arrives.", "Two copies, one signed.", "Remember the reference number.",
)  # fmt: skip

CATEGORIES = (
    ("Work", "#1F6FEB"),
    ("Home", "#2DA44E"),
    ("Errands", "#BF8700"),
    ("Health", "#CF222E"),
    ("Finance", "#8250DF"),
    ("Family", "#E16F24"),
    ("Learning", "#0969DA"),
    ("Travel", "#1B7C83"),
)


def task_title(rng: random.Random | None = None) -> str:
    """`rng` for reproducible content (the seed); the process-wide generator otherwise, which
    Python re-seeds in each forked Locust process."""
    pick = rng.choice if rng else random.choice
    return f"{pick(VERBS)} {pick(OBJECTS)}"


def task_description(rng: random.Random | None = None) -> str | None:
    """Half the tasks have a description of one to three sentences."""
    source: Any = rng or random
    if source.random() < 0.5:
        return None
    return " ".join(source.sample(DETAILS, source.randint(1, 3)))
