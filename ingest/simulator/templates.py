"""Prompt templates. ``{q}`` marks where the problem or text goes.

Reasoning-eliciting wording appears in benign populations too (students, benchmark runners, people):
wording alone must not separate rings from everyone else.
"""

from __future__ import annotations

import numpy as np

# extraction rings: reasoning-eliciting templates, each ring uses a few paraphrases
RING_TEMPLATES: tuple[str, ...] = (
    "{q}\n\nThink step by step and show all of your reasoning before giving the final answer.",
    "Solve the following problem. Explain each step of your reasoning in detail, then state the "
    "final answer on its own line.\n\n{q}",
    "Please work through this carefully, writing out every intermediate step:\n{q}",
    "{q}\nWalk me through your full chain of thought, then give the answer.",
    "Problem: {q}\n\nLet's reason about this step by step. Show your complete working.",
    "I want to understand the full reasoning. {q} Lay out each step and justify it.",
    "{q}\n\nBefore answering, reason out loud in detail. End with 'Final answer:'.",
    "Explain your thinking thoroughly, step by step, for this question: {q}",
    "Task: {q}\nGive a detailed derivation of the solution, one step per line, then the result.",
    "{q}\n\nShow your work. I need every step of the reasoning, not just the answer.",
    "Can you break this down step by step and explain the logic at each stage? {q}",
    "Reason carefully and verify each step. {q}\nPresent the reasoning first, the answer last.",
)

# rings pick a system prompt that ordinary people use too (or none)
RING_SYSTEM_PROMPTS: tuple[str | None, ...] = (
    None,
    None,
    "You are a helpful assistant.",
    "You are a helpful assistant. Answer concisely.",
)

# students: some ask for the working, some paste the problem
STUDENT_STEP_TEMPLATES: tuple[str, ...] = (
    RING_TEMPLATES[2],  # common wording: not a ring fingerprint on its own
    "Can you explain step by step how to solve this? {q}",
    "{q} please show the steps",
    "how do i solve this: {q}",
    "I'm stuck on this homework problem, can you walk me through it step by step?\n{q}",
    "{q}\nexplain the working pls",
)
STUDENT_PLAIN_TEMPLATES: tuple[str, ...] = ("{q}", "{q} what is the answer", "answer: {q}")

# benchmark runners: chain-of-thought evaluation templates
BENCH_MATH_TEMPLATES: tuple[str, ...] = (
    "Q: {q}\nA: Let's think step by step.",
    "{q}\nPlease reason step by step, and put your final answer within \\boxed{{}}.",
    "Question: {q}\nAnswer: Let's work this out in a step by step way to be sure we have the "
    "right answer.",
)
BENCH_CODE_TEMPLATES: tuple[str, ...] = (
    "Complete the following Python code. Think step by step, then give the full function.\n\n{q}",
    "You are an expert Python programmer. Reason step by step, then solve:\n{q}",
)

# people asking a problem now and then
PEOPLE_REASONING_TEMPLATES: tuple[str, ...] = (
    RING_TEMPLATES[0],
    "{q}",
    "Can you help me with this? {q}",
    "{q} Explain how you got it.",
    "My kid asked me this and I'm not sure: {q}",
)

# app integrators: (system prompt, fixed template); the slot is filled from benign text
INTEGRATOR_TEMPLATES: tuple[tuple[str, str], ...] = (
    ("You classify customer support tickets.",
     "Classify the following support ticket as billing, technical, account or other. "
     "Reply with one word.\n\nTicket: {q}"),
    ("You write product copy for an online shop.",
     "Write a two-sentence product description based on these notes:\n{q}"),
    ("You summarise user feedback for a product team.",
     "Summarize the following text in one sentence:\n\n{q}"),
    ("You are a translation engine. Output only the translation.",
     "Translate to German:\n{q}"),
    ("You extract structured data.",
     "Extract the key entities from the text below as JSON (keys: people, places, dates).\n{q}"),
    ("You moderate community posts.",
     "Does the following post break the community rules? Answer yes or no, then why.\n\n{q}"),
)  # fmt: skip


def split(template: str) -> tuple[str, str]:
    """``(before, after)`` around ``{q}``, with doubled braces made single."""
    before, _, after = template.partition("{q}")
    return before.replace("{{", "{").replace("}}", "}"), after.replace("{{", "{").replace("}}", "}")


def fill(templates: np.ndarray, choice: np.ndarray, bodies: np.ndarray) -> np.ndarray:
    """Vectorised ``templates[choice[i]].format(q=bodies[i])`` for object arrays of strings."""
    parts = [split(str(t)) for t in templates]
    before = np.array([p[0] for p in parts], dtype=object)
    after = np.array([p[1] for p in parts], dtype=object)
    result: np.ndarray = before[choice] + bodies + after[choice]
    return result
