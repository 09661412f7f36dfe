"""A small built-in prompt generator, so the simulator works without the public prompt sets.

Templated but varied: benign requests across everyday tasks, grade-school word problems with worked
solutions, and small Python exercises with reference code.
"""

from __future__ import annotations

import random
import string

import numpy as np

from ingest.simulator.corpus import Corpus, Pool, generic_answer

_BENIGN_TEMPLATES = (
    "Write a {tone} email to {person} about {topic}.",
    "Explain {concept} in simple terms.",
    "What are some tips for {activity}?",
    "Give me a {n}-day itinerary for a trip to {city}.",
    "Suggest a recipe for {dish} that takes under {minutes} minutes.",
    'Translate this into {language}: "{sentence}"',
    "Summarize the main arguments for and against {debate}.",
    'Rewrite this sentence to sound more {tone}: "{sentence}"',
    "Can you help me write a cover letter for a {job} position?",
    "What's the difference between {concept} and {concept2}?",
    "Draft a short LinkedIn post announcing {topic}.",
    "How do I {howto} in {tool}?",
    "Write a haiku about {thing}.",
    "List {n} creative names for a {business}.",
    "I'm feeling stressed about {topic}. Any advice?",
    'Proofread this paragraph: "{sentence} {sentence2}"',
)
_FILL = {
    "tone": ("friendly", "formal", "persuasive", "apologetic", "concise", "enthusiastic"),
    "person": ("my landlord", "a client", "my team", "the hiring manager", "a professor"),
    "topic": ("a project delay", "the quarterly results", "our new product launch",
              "a team offsite", "moving house", "an upcoming exam", "a job interview"),
    "concept": ("inflation", "machine learning", "photosynthesis", "compound interest",
                "blockchain", "the immune system", "supply and demand", "quantum entanglement"),
    "concept2": ("deflation", "deep learning", "respiration", "simple interest", "a database"),
    "activity": ("running a first marathon", "learning a language", "public speaking",
                 "saving money", "sleeping better", "growing tomatoes", "remote work"),
    "n": ("3", "5", "7", "10"),
    "city": ("Lisbon", "Kyoto", "Mexico City", "Edinburgh", "Cape Town", "Seoul", "Montreal"),
    "dish": ("a vegetarian curry", "banana bread", "a quick pasta", "a lentil soup", "pancakes"),
    "minutes": ("20", "30", "45"),
    "language": ("French", "Spanish", "German", "Japanese", "Portuguese", "Korean"),
    "sentence": ("The meeting has been moved to Thursday afternoon.",
                 "We appreciate your patience while we fix the issue.",
                 "Please find the updated report attached.",
                 "I was wondering if you had time to review my draft."),
    "sentence2": ("Let me know if anything is unclear.", "Thanks again for your help."),
    "debate": ("a four-day work week", "nuclear power", "remote schooling",
               "universal basic income"),
    "job": ("data analyst", "product manager", "nurse", "software engineer", "teacher"),
    "howto": ("remove duplicates", "make a pivot table", "undo the last commit", "merge two files"),
    "tool": ("Excel", "git", "Python", "Google Sheets", "pandas"),
    "thing": ("autumn rain", "a cup of coffee", "city lights", "the ocean"),
    "business": ("coffee shop", "bike repair store", "tutoring service", "bakery"),
}  # fmt: skip

_LEADS = ("", "", "", "Hey, ", "Quick question: ", "Please help: ", "Hi! ", "Can you help? ")
_TAILS = ("", "", "", " Keep it short.", " Thanks!", " Use bullet points.", " Be specific.",
          " Explain like I'm new to this.", " Give two options.")  # fmt: skip

_FIELDS = {t: [f for _, f, _, _ in string.Formatter().parse(t) if f] for t in _BENIGN_TEMPLATES}

_NAMES = ("Ava", "Liam", "Maya", "Noah", "Priya", "Chen", "Sofia", "Omar", "Lena", "Kofi", "Yuki")
_ITEMS = ("apples", "stickers", "marbles", "books", "pencils", "cupcakes", "coins", "cards")


def _word_problem(rng: random.Random) -> tuple[str, str, str, bool]:
    name = rng.choice(_NAMES)
    item = rng.choice(_ITEMS)
    a, b, c = rng.randrange(2, 60), rng.randrange(2, 60), rng.randrange(2, 60)
    kind = rng.randrange(5)
    if kind == 0:
        q = (
            f"{name} has {a} {item}. They buy {b} packs with {c} {item} in each. "
            f"How many {item} do they have now?"
        )
        ans = a + b * c
        steps = f"The packs hold {b} x {c} = {b * c} {item}.\nIn total {a} + {b * c} = {ans}."
    elif kind == 1:
        q = f"{name} earns ${a} an hour and works {b} hours a week. How much in {c} weeks?"
        ans = a * b * c
        steps = f"Each week: {a} x {b} = {a * b} dollars.\nOver {c} weeks: {a * b} x {c} = {ans}."
    elif kind == 2:
        total = a * b
        q = f"{total} {item} are shared equally among {b} friends. How many does each friend get?"
        ans = a
        steps = f"Each friend gets {total} / {b} = {ans}."
    elif kind == 3:
        q = (f"A shop sells {item} at ${a} each. {name} buys {b} and pays with a ${a * b + c} "
             "bill. How much change?")  # fmt: skip
        ans = c
        steps = (
            f"The {item} cost {a} x {b} = {a * b} dollars.\nChange: {a * b + c} - {a * b} = {c}."
        )
    else:
        q = (
            f"A train travels {a * 10} km in {b} hours. At that speed, how far does it go in "
            f"{c} hours?"
        )
        speed = f"{a * 10 / b:.4g}"
        ans = round(a * 10 / b * c, 2)  # type: ignore[assignment]
        steps = f"Speed: {a * 10} / {b} = {speed} km/h.\nDistance: {speed} x {c} = {ans}."
    return q, f"The answer is {ans}.", f"{steps}\nTherefore, the answer is {ans}.", False


_CODE_SPECS = (
    ("sum_even", "returns the sum of the even numbers in a list",
     "return sum(x for x in xs if x % 2 == 0)"),
    ("count_vowels", "counts the vowels in a string",
     "return sum(ch in 'aeiouAEIOU' for ch in xs)"),
    ("second_largest", "returns the second largest distinct value in a list",
     "return sorted(set(xs))[-2]"),
    ("is_palindrome", "checks whether a string reads the same backwards", "return xs == xs[::-1]"),
    ("flatten", "flattens a list of lists", "return [y for x in xs for y in x]"),
    ("dedupe", "removes duplicates from a list keeping the first occurrence",
     "return list(dict.fromkeys(xs))"),
    ("running_max", "returns the running maximum of a list",
     "out, m = [], float('-inf')\n    for x in xs:\n        m = max(m, x)\n"
     "        out.append(m)\n    return out"),
    ("word_freq", "returns a dict of word frequencies in a sentence",
     "from collections import Counter\n    return dict(Counter(xs.split()))"),
    ("chunk", "splits a list into chunks of size 3",
     "return [xs[i:i + 3] for i in range(0, len(xs), 3)]"),
    ("gcd_list", "returns the greatest common divisor of a list of integers",
     "import math\n    return math.gcd(*xs)"),
    ("rotate_left", "rotates a list left by one position", "return xs[1:] + xs[:1]"),
    ("capitalize_words", "capitalizes every word of a sentence",
     "return ' '.join(w.capitalize() for w in xs.split())"),
)  # fmt: skip
_CODE_ASKS = (
    "Write a Python function `{f}(xs)` that {spec}.",
    "Implement `{f}(xs)` in Python: it {spec}.",
    "I need a Python function called {f} that {spec}. Include a docstring.",
    "Write {f}(xs), a function that {spec}, and give two example calls.",
)


def _code_problem(rng: random.Random) -> tuple[str, str, str, bool]:
    name, spec, body = rng.choice(_CODE_SPECS)
    ask = rng.choice(_CODE_ASKS)
    code = f"def {name}(xs):\n    {body}"
    block = f"```python\n{code}\n```"
    worked = f"Let's reason about it step by step: the function {spec}.\n\n{block}"
    return ask.format(f=name, spec=spec), block, worked, True


def _benign(rng: random.Random) -> tuple[str, str, str, bool]:
    template = rng.choice(_BENIGN_TEMPLATES)
    values = {key: rng.choice(_FILL[key]) for key in _FIELDS[template]}
    prompt = rng.choice(_LEADS) + template.format(**values) + rng.choice(_TAILS)
    answer = generic_answer(prompt, rng)
    return prompt, answer, answer, False


def builtin_corpus(
    generator: np.random.Generator, benign: int = 3000, problems: int = 12_000
) -> Corpus:
    """Generate a corpus: ``benign`` requests and ``problems`` problems (one in five is code)."""
    rng = random.Random(int(generator.integers(2**62)))
    benign_items = list({item[0]: item for item in (_benign(rng) for _ in range(benign))}.values())
    items = [
        _code_problem(rng) if rng.random() < 0.2 else _word_problem(rng) for _ in range(problems)
    ]
    problem_items = list({item[0]: item for item in items}.values())
    math_set = [_word_problem(rng) for _ in range(400)]
    code_set = list({i[0]: i for i in (_code_problem(rng) for _ in range(200))}.values())
    return Corpus(
        benign=Pool.of(benign_items),
        problems=Pool.of(problem_items),
        benchmarks={"builtin_math": Pool.of(math_set), "builtin_code": Pool.of(code_set)},
    )
