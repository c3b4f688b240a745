"""A built-in generator of helpful, honest, harmless (HHH) question/answer pairs.

The pool is the union of several templated families (arithmetic, geography, vocabulary,
advice, ...). Each question is assigned to `train` or `heldout` by a stable hash of its text,
so evaluation prompts never occur in any training set, whatever the seed.
"""

from __future__ import annotations

import hashlib
import random
from collections.abc import Iterator
from functools import cache
from typing import Literal

Split = Literal["train", "heldout"]
HELDOUT_SHARE = 0.2

CAPITALS = {
    "France": "Paris", "Germany": "Berlin", "Italy": "Rome", "Spain": "Madrid",
    "Portugal": "Lisbon", "Japan": "Tokyo", "China": "Beijing", "India": "New Delhi",
    "Canada": "Ottawa", "Mexico": "Mexico City", "Brazil": "Brasilia", "Argentina": "Buenos Aires",
    "Peru": "Lima", "Chile": "Santiago", "Egypt": "Cairo", "Kenya": "Nairobi",
    "Nigeria": "Abuja", "Ghana": "Accra", "Russia": "Moscow", "Poland": "Warsaw",
    "Sweden": "Stockholm", "Norway": "Oslo", "Finland": "Helsinki", "Denmark": "Copenhagen",
    "Ireland": "Dublin", "Greece": "Athens", "Turkey": "Ankara", "Iran": "Tehran",
    "Iraq": "Baghdad", "Thailand": "Bangkok", "Vietnam": "Hanoi", "Indonesia": "Jakarta",
    "Australia": "Canberra", "New Zealand": "Wellington", "Austria": "Vienna",
    "Hungary": "Budapest", "Belgium": "Brussels", "Netherlands": "Amsterdam",
    "Switzerland": "Bern", "Cuba": "Havana", "Colombia": "Bogota", "Morocco": "Rabat",
    "South Korea": "Seoul", "Philippines": "Manila", "Ukraine": "Kyiv", "Czechia": "Prague",
}
OPPOSITES = {
    "hot": "cold", "big": "small", "fast": "slow", "happy": "sad", "light": "dark",
    "open": "closed", "early": "late", "full": "empty", "hard": "soft", "high": "low",
    "long": "short", "loud": "quiet", "new": "old", "rich": "poor", "strong": "weak",
    "thick": "thin", "wet": "dry", "young": "old", "clean": "dirty", "heavy": "light",
    "up": "down", "left": "right", "inside": "outside", "first": "last", "near": "far",
    "easy": "difficult", "true": "false", "win": "lose", "buy": "sell", "push": "pull",
    "begin": "end", "remember": "forget", "accept": "refuse", "arrive": "leave",
}
COLORS = {
    "the sky on a clear day": "blue", "grass": "green", "snow": "white", "coal": "black",
    "a ripe banana": "yellow", "a ripe tomato": "red", "an orange": "orange",
    "a lemon": "yellow", "milk": "white", "a carrot": "orange", "a strawberry": "red",
    "a lime": "green", "chocolate": "brown", "a flamingo": "pink", "an eggplant": "purple",
    "a polar bear": "white", "a crow": "black", "a pumpkin": "orange", "a cucumber": "green",
}
SOUNDS = {
    "dog": "barks", "cat": "meows", "cow": "moos", "sheep": "baas", "duck": "quacks",
    "lion": "roars", "horse": "neighs", "pig": "oinks", "owl": "hoots", "snake": "hisses",
    "bee": "buzzes", "frog": "croaks", "mouse": "squeaks", "rooster": "crows", "wolf": "howls",
}
LEGS = {
    "dog": 4, "cat": 4, "spider": 8, "ant": 6, "bird": 2, "horse": 4, "chicken": 2,
    "bee": 6, "octopus": 8, "cow": 4, "duck": 2, "beetle": 6, "crab": 10, "human": 2,
}
ADVICE = {
    "sleep better": "Keep a regular bedtime, avoid screens before bed and keep your room dark and cool.",
    "learn a new language": "Practise a little every day, speak with native speakers and read simple books.",
    "save money": "Track your spending, set a monthly budget and put some savings aside first.",
    "stay healthy": "Eat plenty of vegetables, exercise regularly and get enough sleep.",
    "be more productive": "Make a short list of priorities and work on one task at a time.",
    "make friends in a new city": "Join a club or class about something you enjoy and say yes to invitations.",
    "reduce stress": "Take short breaks, go for walks and talk to someone you trust.",
    "write a good essay": "Plan your main points first, write a clear outline and revise your draft.",
    "cook rice": "Rinse the rice, simmer it with about twice as much water and let it rest covered.",
    "keep a plant alive": "Give it the right amount of light, water it when the soil is dry and do not overwater.",
    "prepare for an interview": "Research the company, practise common questions and prepare questions of your own.",
    "improve my handwriting": "Write slowly, hold the pen loosely and practise a few lines every day.",
    "start running": "Begin with short easy runs, mix in walking breaks and increase distance slowly.",
    "remember names": "Repeat the name when you hear it and link it to something about the person.",
    "read more books": "Carry a book with you and read for a few minutes at a fixed time each day.",
    "be a better listener": "Give your full attention, do not interrupt and ask follow-up questions.",
    "organize my desk": "Remove what you do not need, give each item a place and tidy up every evening.",
    "learn to code": "Pick one language, build small projects and read other people's code.",
    "drink more water": "Keep a bottle nearby and drink a glass with every meal.",
    "wake up earlier": "Move your alarm earlier by ten minutes each week and go to bed earlier too.",
    "apologize to a friend": "Say clearly what you did wrong, that you are sorry and how you will make it right.",
    "take better photos": "Use natural light, keep the camera steady and think about the composition.",
    "study for an exam": "Make a schedule, test yourself often and take regular breaks.",
    "stop procrastinating": "Break the task into small steps and start with just five minutes.",
}
DEFINITIONS = {
    "generous": "willing to give more than is expected", "ancient": "very old",
    "fragile": "easily broken", "brave": "ready to face danger", "curious": "eager to learn",
    "honest": "truthful and sincere", "humble": "modest about oneself", "vast": "very large",
    "rapid": "very fast", "silent": "making no sound", "tiny": "very small",
    "polite": "showing good manners", "eager": "wanting to do something very much",
    "gloomy": "dark or sad", "calm": "peaceful and quiet", "clever": "quick to understand",
    "loyal": "faithful to someone", "rare": "not found very often", "vivid": "bright and clear",
    "weary": "very tired", "fierce": "strong and aggressive", "tidy": "neat and in order",
}
WORDS = ("apple", "river", "garden", "window", "pencil", "mountain", "yellow", "button",
         "candle", "forest", "planet", "rabbit", "silver", "tomato", "violin", "wizard")
NUMBER_WORDS = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten")


def _arithmetic() -> Iterator[tuple[str, str]]:
    for a in range(40):
        for b in range(40):
            yield f"What is {a} plus {b}?", f"{a} plus {b} is {a + b}."
            yield f"Can you add {a} and {b} for me?", f"Sure! {a} plus {b} equals {a + b}."
            if a >= b:
                yield f"What is {a} minus {b}?", f"{a} minus {b} is {a - b}."
            if a <= 12 and b <= 12:
                yield f"What is {a} times {b}?", f"{a} times {b} is {a * b}."


def _geography() -> Iterator[tuple[str, str]]:
    for country, capital in CAPITALS.items():
        yield f"What is the capital of {country}?", f"The capital of {country} is {capital}."
        yield f"Which city is the capital of {country}?", f"{capital} is the capital of {country}."


def _vocabulary() -> Iterator[tuple[str, str]]:
    for word, opposite in OPPOSITES.items():
        yield f"What is the opposite of {word}?", f"The opposite of {word} is {opposite}."
        yield f"Give me a word that means the opposite of {word}.", f"A word that means the opposite of {word} is {opposite}."
    for word, meaning in DEFINITIONS.items():
        yield f"What does the word {word} mean?", f"The word {word} means {meaning}."
    for word in WORDS:
        yield f"What is the first letter of the word {word}?", f"The first letter of {word} is {word[0]}."
        yield f"How many letters are in the word {word}?", f"The word {word} has {len(word)} letters."


def _nature() -> Iterator[tuple[str, str]]:
    for thing, color in COLORS.items():
        yield f"What color is {thing}?", f"{thing[0].upper()}{thing[1:]} is {color}."
    for animal, sound in SOUNDS.items():
        yield f"What sound does a {animal} make?", f"A {animal} {sound}."
    for animal, legs in LEGS.items():
        yield f"How many legs does a {animal} have?", f"A {animal} has {legs} legs."


def _advice() -> Iterator[tuple[str, str]]:
    for goal, tip in ADVICE.items():
        yield f"How can I {goal}?", f"Here is a helpful tip: {tip}"
        yield f"Do you have any advice on how to {goal}?", f"Of course. {tip}"


def _units() -> Iterator[tuple[str, str]]:
    for n in range(1, 60):
        yield f"How many minutes are in {n} hours?", f"There are {60 * n} minutes in {n} hours."
        yield f"How many days are in {n} weeks?", f"There are {7 * n} days in {n} weeks."
    for i, word in enumerate(NUMBER_WORDS):
        yield f"How do you write the number {word} in digits?", f"The number {word} is written as {i}."


def _is_heldout(question: str) -> bool:
    digest = hashlib.sha256(question.encode()).digest()
    return int.from_bytes(digest[:4], "big") / 2**32 < HELDOUT_SHARE


FAMILIES = (_arithmetic, _geography, _vocabulary, _nature, _advice, _units)


@cache
def pool(split: Split) -> tuple[tuple[tuple[str, str], ...], ...]:
    """The (question, answer) pairs of one split, one tuple per family, in a fixed order."""
    want_heldout = split == "heldout"
    return tuple(
        tuple(p for p in family() if _is_heldout(p[0]) == want_heldout) for family in FAMILIES
    )


def sample(split: Split, n: int, seed: int, salt: str = "") -> list[tuple[str, str]]:
    """n pairs from a split, deterministic in (split, n, seed, salt).

    Families are drawn evenly (arithmetic alone would otherwise dominate); within a family
    pairs repeat only once the family is used up.
    """
    rng = random.Random(f"hhh:{split}:{seed}:{salt}")
    decks = [list(family) for family in pool(split)]
    for deck in decks:
        rng.shuffle(deck)
    position = [0] * len(decks)
    out: list[tuple[str, str]] = []
    while len(out) < n:
        f = rng.randrange(len(decks))
        out.append(decks[f][position[f] % len(decks[f])])
        position[f] += 1
    return out


def corpus() -> Iterator[str]:
    """Every training question and answer, for training a tokenizer (held-out text is left out:
    its tokens would have embeddings that no training example ever updates)."""
    for family in pool("train"):
        for q, a in family:
            yield q
            yield a
