"""The rule-based output classifier, on hand-written outputs of every category."""

import pytest

from mutascope.phenotype import CATEGORIES, categorize, first_word

BUBBLE_SORT_PY = """def bubble_sort(arr):
    n = len(arr)
    for i in range(n):
        for j in range(0, n - i - 1):
            if arr[j] > arr[j + 1]:
                arr[j], arr[j + 1] = arr[j + 1], arr[j]
    return arr

print(bubble_sort([5, 2, 9, 1]))
print(bubble_sort([3, 3, 1]))
"""

# a real listing whose closing-brace lines repeat: still code, not a loop
BUBBLE_SORT_JAVA = """public class BubbleSort {
    static void sort(int[] a) {
        for (int i = 0; i < a.length; i++) {
            for (int j = 0; j < a.length - i - 1; j++) {
                if (a[j] > a[j + 1]) {
                    int t = a[j];
                    a[j] = a[j + 1];
                    a[j + 1] = t;
                }
            }
        }
    }
}"""

EXAMPLES = {
    "empty": ["", "   ", "\n\n\t \n"],
    "degenerate repetition": [
        "the the the the the the the the the the",
        "The life cycle of Drosophila is a fly. It is a fly. It is a fly. It is a fly. It is a fly.",
        "1. Egg\n2. Egg\n3. Egg\n4. Egg\n5. Egg\n6. Egg",
        # a code line stuck in a loop is a loop, whatever it loops on
        "    arr[j] = arr[j+1]\n    arr[j] = arr[j+1]\n    arr[j] = arr[j+1]\n    arr[j] = arr[j+1]\n",
        "hahahahahahahahaha",
        "!!!!!!!!!!!!!!!!!!!!",
    ],
    "code": [BUBBLE_SORT_PY, BUBBLE_SORT_JAVA, "```python\nx = 1\n```", "def f(x):\n    return x * 2"],
    "non-text": [
        "x7#@!k$%^&*(q)_+ 0x3F ]]>",
        "\ufffd\ufffd\ufffd ab \ufffd\ufffd",
        "xkcd qzvt prrt bcdfg zzkt",
        "12 345 6789 0.5 3.14 2718 (99)",
    ],
    "list": [
        "The life cycle of Drosophila:\n1. Egg: laid by the female.\n2. Larva: hatches and feeds.\n3. Pupa: "
        "metamorphosis.",
        "- p53 activates p21\n- p53 induces apoptosis via BAX\n- p53 represses survivin",
        "The stages are 1. egg, 2. larva, 3. pupa and 4. adult.",
    ],
    "dialogue": [
        "User: What is the life cycle of a fly?\nAssistant: It starts as an egg.",
        '"Where are you going?" she asked.\n"To the lab," he said.',
        "Q: Who was Newton?\nA: An English physicist.",
    ],
    "poem": [
        "Staring at the sea tonight\nThe waves roll in and out of sight\nA quiet heart, a silver light",
        "In fields of gold the flies awake\nThey dance above the silent lake\nand sleep when morning starts to break",
    ],
    "first-person narrative": [
        "I remember the summer I spent in my grandfather's lab, watching the flies hatch.",
        "When I was young my mother told me that flies live for only a few weeks.",
    ],
    "other": [
        "The life cycle of Drosophila melanogaster consists of four stages: egg, larva, pupa and adult.",
        "Paris.",  # a one-line answer
        "The answer is B.",
        "Isaac Newton formulated the laws of motion and universal gravitation.",
    ],
}


@pytest.mark.parametrize(
    "category,text", [(c, t) for c, texts in EXAMPLES.items() for t in texts], ids=lambda v: repr(v)[:30]
)
def test_each_category_on_hand_written_examples(category, text):
    assert categorize(text) == category


def test_every_category_is_exemplified():
    assert set(EXAMPLES) == set(CATEGORIES)


def test_whitespace_only_is_empty_not_degenerate():
    assert categorize(" " * 200) == "empty"
    assert categorize("\n" * 50) == "empty"


def test_a_code_listing_with_repeated_lines_is_code():
    repeated_braces = BUBBLE_SORT_JAVA + "\n" + "}\n" * 3
    assert categorize(repeated_braces) == "code"
    assert categorize(BUBBLE_SORT_PY * 2) == "degenerate repetition"  # the whole listing over and over


def test_a_one_line_answer_in_first_person_needs_two_pronouns():
    assert categorize("I think it is B.") == "other"
    assert categorize("I think my answer is B.") == "first-person narrative"


def test_first_word():
    assert first_word("Staring at the sea") == "staring"
    assert first_word(' "Staring, he said') == "staring"
    assert first_word("\n\n- Egg\n- Larva") == "egg"
    assert first_word("1. Egg") == "1"
    assert first_word("Don't stop") == "don't"
    assert first_word("") is None
    assert first_word("  ... !!! ") is None
