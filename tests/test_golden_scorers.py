"""Golden verdicts of the official scorers, derived by hand from their algorithms (see each protocol's
docstring for the code and commit followed) and checked against those scorers run on the same inputs.

MMBench: VLMEvalKit `can_infer` (exact matching). MMMU: MMMU-Benchmark eval_utils. TextVQA: lmms-eval's
EvalAIAnswerProcessor and `textvqa_process_results`. MMStar: VLMEvalKit `can_infer` under
`mcq_vanilla_eval`, and the same for ScienceQA-IMG; POPE: VLMEvalKit `YOrN_Extraction` and `POPE_rating`
(both sets of verdicts were taken by running those functions on the outputs).
"""

import pytest
from conftest import get_protocol

from vovnet.evaluation.scoring import score
from vovnet.model.answer_parsing import strip_thinking
from vovnet.tasks.mmbench import protocol as mmbench
from vovnet.tasks.mmmu import protocol as mmmu
from vovnet.tasks.mmstar import protocol as mmstar
from vovnet.tasks.pope import protocol as pope
from vovnet.tasks.scienceqa_img import protocol as scienceqa
from vovnet.tasks.textvqa import protocol as textvqa

ANIMALS = ["cat", "dog", "fish", "bird"]
LETTERS_ABCDE = "ABCDE"
YES_NO = ["yes", "no"]
NUMS = ["1", "12", "123"]

# (output, options, VLMEvalKit's verdict: letter, 'Z' refusal, or None = unresolved -> wrong)
MMBENCH = [
    ("A", ANIMALS, "A"),
    ("B", ANIMALS, "B"),
    ("C.", ANIMALS, "C"),
    ("(D)", ANIMALS, "D"),
    ("D) bird", ANIMALS, "D"),
    ("The answer is B", ANIMALS, "B"),
    # the letter's first occurrence is word 0 of 16: not among the last four; the text is too long
    ("B is the correct answer because the animal in the picture has four legs and barks", ANIMALS, None),
    ("The correct answer is **C**.", ANIMALS, "C"),
    ("I think it's A", ANIMALS, "A"),
    ("A cat", ANIMALS, "A"),
    ("A dog is shown", ANIMALS, "A"),
    ("There is a dog in the image, so I choose option A among these four choices", ANIMALS, None),
    ("I choose option A here", ANIMALS, "A"),
    ("B or C", ANIMALS, None),
    ("E", ANIMALS, None),
    ("Z", ANIMALS, "Z"),
    ("Cannot determine the answer", ANIMALS, "Z"),
    ("Sorry, I can't help with images of people yet.", ANIMALS, "Z"),
    ("I'm sorry, but without the image provided I cannot answer.", ANIMALS, "Z"),
    ("cannot determine the answer", ANIMALS, None),  # refusal phrases are case-sensitive
    ("", ANIMALS, None),
    ("   ", ANIMALS, None),
    ("dog", ANIMALS, "B"),
    ("It is a dog.", ANIMALS, "B"),
    ("The animal in this picture is clearly a dog", ANIMALS, None),  # 43 chars > 2 x 14: no text rule
    ("a cat or a dog", ANIMALS, None),
    ("bird", ANIMALS, "D"),
    ("catfish", ANIMALS, None),
    ("I cannot tell from the image", YES_NO, None),
    ("None of them", YES_NO, None),
    ("no", YES_NO, "B"),
    ("Yes.", YES_NO, "A"),
    ("not sure", YES_NO, "B"),  # 8 chars <= 10 and contains "no"
    ("answer is c", ANIMALS, "C"),
    ("The answer is a dog", ANIMALS, "A"),  # "answer is a" -> A
    ("My answer is Banana", ANIMALS, "B"),
    ("The answer is E", ANIMALS, None),
    ("A B C D", ANIMALS, None),
    ("Option A", ANIMALS, "A"),
    ("[B]", ANIMALS, "B"),
    ("{C}", ANIMALS, "C"),
    ("#D", ANIMALS, "D"),
    ("**A**", ANIMALS, "A"),
    ("A:", ANIMALS, "A"),
    ("A;", ANIMALS, "A"),
    ("A!", ANIMALS, "A"),
    ("A?", ANIMALS, None),
    ("A/B", ANIMALS, None),
    ("'A'", ANIMALS, None),
    ("A-", ANIMALS, None),
    ("Answer: B", ANIMALS, "B"),
    ("B. dog", ANIMALS, "B"),
    ("The answer is (C) fish", ANIMALS, "C"),
    ("I A think that is right", ANIMALS, None),  # word 1 of 6: not among the last four
    ("I think A is right here", ANIMALS, "A"),  # word 2 of 6: among the last four
    ("A, no wait, it is really definitely A", ANIMALS, None),  # first occurrence decides, not the last
    ("C is wrong, answer is D", ANIMALS, "D"),
    ("The correct answer is **B**", ANIMALS, "B"),
    ("Failed to obtain answer via API", ANIMALS, None),
    ("fish.", ANIMALS, "C"),
    ("FISH", ANIMALS, "C"),
    ("I don't know", YES_NO, None),
    ("12", NUMS, None),
    ("123", NUMS, None),
    ("1", NUMS, "A"),
    ("Z is not an option; A", ["red", "green"], "A"),
    ("Z or A", ANIMALS, "A"),
    ("answer is d.", YES_NO, None),
    ("Answer is B", ANIMALS, "B"),
    ("the answer is B but not A", ANIMALS, "B"),
    ("Reasoning...\nB", ANIMALS, "B"),
]

COLOURS = ["red", "green", "blue", "yellow"]
PETS = ["cat", "cat food", "dog", "fish"]
# (output, options, the official letter, or None = no candidate: the official code draws at random)
MMMU_CHOICE = [
    ("A", COLOURS, "A"),
    ("(B)", COLOURS, "B"),
    ("B.", COLOURS, "B"),
    ("The answer is (C).", COLOURS, "C"),
    ("(A) is wrong, the correct one is (C)", COLOURS, "C"),
    ("(C) not (A)", COLOURS, "A"),
    ("A or B", COLOURS, "B"),
    ("B or A", COLOURS, "A"),
    ("I pick (B) rather than A", COLOURS, "B"),
    ("A,", COLOURS, "A"),
    (".A.", COLOURS, "A"),
    ("'A'", COLOURS, "A"),
    ("A'.", COLOURS, "A"),
    ("'A'.", COLOURS, "A"),
    ("A.'", COLOURS, None),  # '.' is stripped before "'": "A." stays
    ("green", COLOURS, None),  # five words or fewer: no option-text rule
    ("I am quite sure that it is green here", COLOURS, "B"),
    ("It is either red or green, I think green", COLOURS, "B"),
    ("green or red, definitely red in this case", COLOURS, "A"),
    ("The colour shown is a shade of blue-green", COLOURS, "B"),
    ("", COLOURS, None),
    ("   ", COLOURS, None),
    ("a", COLOURS, None),
    ("(a)", COLOURS, None),
    ("E", COLOURS, None),
    ("(E)", COLOURS, None),
    ("Answer: D", COLOURS, "D"),
    ("D: yellow", COLOURS, None),
    ("Answer: (D) yellow", COLOURS, "D"),
    ("The answer is D.", COLOURS, "D"),
    ("A is correct", COLOURS, "A"),
    ("Option B is correct because the image shows a green apple", COLOURS, "B"),
    ("I think the answer is yellow, not red", COLOURS, "A"),  # the later option text wins
    ("B)", COLOURS, None),
    ("(B", COLOURS, None),
    ("[B]", COLOURS, None),
    ("B\n", COLOURS, None),
    ("\nB", COLOURS, None),
    ("A B C D", COLOURS, "D"),
    ("(A)(B)", COLOURS, "B"),
    ("Both (A) and (B) are plausible but (A) is better", COLOURS, "A"),
    ("The answer is: C", COLOURS, "C"),
    ("C!", COLOURS, "C"),
    ("C?", COLOURS, "C"),
    ("C;", COLOURS, "C"),
    ("C:", COLOURS, "C"),
    (".C", COLOURS, "C"),
    ("C...", COLOURS, "C"),
    ("redgreen blue stuff and more words", COLOURS, "C"),
    ("I would say it is cat food here", PETS, "A"),  # "cat" and "cat food" end at one position: tie -> A
    ("It is a cat, not cat food at all", PETS, "A"),
    ("I think it is a d og, or a dog maybe", PETS, "C"),
    ("A. red", COLOURS, None),
    ("(A). red", COLOURS, "A"),
    ("The answer is A and not B", COLOURS, "B"),
    ("answer (C), since C is blue", COLOURS, "C"),
    ("the right colour here is clearly blue", COLOURS, "C"),
    ("RED is the colour of the thing shown", COLOURS, "A"),
    ("It's neither of these options honestly", COLOURS, None),
    ("A A A", COLOURS, "A"),
    ("(D) (D) (A)", COLOURS, "A"),
    ("x (C) y (B) z (C)", COLOURS, "C"),
    ("yellow yellow is what I see", COLOURS, "D"),
    ("This is B", COLOURS, "B"),
    ("B,", COLOURS, "B"),
]

# (output, gold answers, the official verdict)
MMMU_OPEN = [
    ("5", ["5"], True),
    ("The total is 5. so the answer is 7", ["5"], False),
    ("It costs 1,234 dollars", ["234"], True),
    ("It costs 1,234 dollars", ["1234"], True),
    ("Cytoplasm", ["C"], False),
    ("The answer is C", ["C"], True),
    ("c", ["C"], True),
    ("Answer: c", ["C"], True),
    ("abc", ["C"], False),
    ("c is the answer", ["C"], False),
    ("x = 3e-2", ["0.03"], True),
    ("The answer is 3.1416", ["3.14"], True),
    ("The answer is 8", ["7"], False),
    ("I think the capital is paris", ["Paris"], True),
    ("Paris is the capital", ["Paris"], False),
    ("2 + 3 = 5", ["5"], True),
    ("", ["5"], False),
    ("", ["a"], False),
    ("The answer is 12.5%", ["12.5"], True),
    ("The answer is 12.5%", ["12.5%"], True),
    ("so the result is -4", ["-4"], True),
    ("the answer is 1,000,000", ["1000000"], True),
    ("1.5e3", ["1500"], True),
    ("The answer is .5", ["0.5"], True),
    ("The answer is 0.499", ["0.5"], True),
    ("The answer is 0.494", ["0.5"], False),
    ("The answer is five", ["5"], False),
    ("The answer is five", ["five"], True),
    ("first line\nso the answer is 42", ["42"], True),
    ("The answer is 42.\nBut I may be wrong", ["42"], True),
    ("Thus, x equals 10", ["10"], True),
    ("10 apples", ["10"], True),
    ("approximately 3.14159", ["3.14"], True),
    ("$1,234.56", ["1234.56"], False),  # numbers found: 1,234 and 234.56, never 1234.56
    ("1,234.56", ["1234.56"], True),
    ("The answer is B", ["b"], True),
    ("the answer is ab", ["b"], False),
    ("The answer is a b", ["b"], True),
    ("is is is", ["is"], True),
    ("The answer is .", ["."], False),
    ("Speed = 30 m/s", ["30"], True),
    ("Speed = 30 m/s", ["30 m/s"], True),
    ("The value is 7 and the other is 9", ["7"], False),
    ("The answer is 2/3", ["0.67"], False),
    ("the answer is 2/3", ["2/3"], True),
    ("It is 1e5", ["100000"], True),
    ("answer 12", ["12"], True),
    ("it could be 4 or 5", ["5"], True),
    ("it could be 4 or 5", ["4"], True),
    ("The answer is -0.5", ["-.5"], True),
    ("Therefore the answer is 100.", ["100"], True),
    ("Answer is 3 apples", ["three"], False),
    ("Yes", ["yes"], True),
    ("Yes, because the answer is no", ["yes"], False),
    ("Cytoplasm is the answer", ["cytoplasm"], False),
    ("B", ["b"], True),
    ("1,2,3", ["3"], True),
    ("1,2,3", ["123"], True),
    ("The year is 2,023", ["2023"], True),
    ("The answer is -5", ["5"], False),
    ("x=5", ["5"], True),
    ("x=5\ny=6", ["5"], False),  # '=' counts in the last part only
    ("The answer is 5\n", ["5"], True),
    ("so", ["so"], True),
    ("It is 7", ["7", "seven"], True),
    ("It is seven", ["7", "seven"], True),
]

TEN_HELLO = ["hello world"] * 10
# (output, ten answers, the official VQA accuracy)
TEXTVQA = [
    ("hello world", TEN_HELLO, 1.0),
    ("hello,world", TEN_HELLO, 0.0),
    ("Hello World.", TEN_HELLO, 1.0),
    ("hello world\nsecond line", TEN_HELLO, 0.0),
    ("", TEN_HELLO, 0.0),
    ("Coca-Cola", ["coca cola"] * 10, 1.0),
    ("coca - cola", ["coca cola"] * 10, 1.0),
    ("coca_cola", ["coca cola"] * 10, 1.0),
    ("cocacola", ["coca cola"] * 10, 0.0),
    ("the coca cola", ["coca cola"] * 10, 1.0),
    ("A Coca Cola.", ["coca cola"] * 10, 1.0),
    ("2", ["2"] * 4 + ["two"] * 2 + ["3"] * 4, 1.0),
    ("two", ["2"] * 4 + ["two"] * 2 + ["3"] * 4, 1.0),
    ("3", ["2"] * 4 + ["two"] * 2 + ["3"] * 4, 1.0),
    ("three", ["2"] * 4 + ["two"] * 2 + ["3"] * 4, 1.0),
    ("4", ["2"] * 4 + ["two"] * 2 + ["3"] * 4, 0.0),
    ("yes", ["yes"] + ["no"] * 9, 0.3),
    ("no", ["yes"] + ["no"] * 9, 1.0),
    ("stop", ["stop"] * 2 + ["go"] * 8, 0.6),
    ("Stop!", ["stop"] * 2 + ["go"] * 8, 0.6),
    ("stop!!", ["stop"] * 2 + ["go"] * 8, 0.6),
    ("dont", ["don't"] * 10, 1.0),
    ("don't", ["don't"] * 10, 1.0),
    ("DONT", ["don't"] * 10, 1.0),
    ("whats that", ["what's that"] * 10, 0.0),  # the answer becomes "what 's that"
    ("what's that", ["what's that"] * 10, 1.0),
    ("hes here", ["he's here"] * 10, 0.0),
    ("maam", ["ma'am"] * 10, 1.0),
    ("oclock", ["o'clock"] * 10, 1.0),
    ("yall'll", ["y'all'll"] * 10, 1.0),
    ("yallll", ["y'all'll"] * 10, 0.0),
    ("cant", ["can't"] * 10, 1.0),
    ("Im", ["i'm"] * 10, 0.0),  # the table's key is "Im": never met after lower-casing
    ("I'm", ["i'm"] * 10, 1.0),
    ("shouldntve", ["shouldn't've"] * 10, 0.0),
    ("shouldnt've", ["shouldn't've"] * 10, 1.0),
    ("1,000", ["1000"] * 10, 1.0),
    ("1.000", ["1000"] * 10, 0.0),
    ("3.5", ["3.5"] * 10, 1.0),
    ("3.5.", ["3.5"] * 10, 1.0),
    ("ten", ["10"] * 10, 1.0),
    ("zero", ["none"] * 10, 1.0),
    ("none", ["0"] * 10, 1.0),
    ("1 way", ["one way"] * 10, 1.0),
    ("what?", ["what"] * 10, 1.0),
    ("b", ["a/b"] * 10, 1.0),  # "a/b" -> "a b" -> article dropped
    ("usa", ["u.s.a."] * 10, 1.0),
    ("email", ["e-mail"] * 10, 0.0),
    ("e mail", ["e-mail"] * 10, 1.0),
    ("johns", ["john's"] * 10, 0.0),
    ("John's", ["john's"] * 10, 1.0),
    ("john ' s", ["john's"] * 10, 0.0),
    ("new\tyork", ["new york"] * 10, 1.0),
    ("  new york  ", ["new york"] * 10, 1.0),
    ("New York City", ["new york"] * 10, 0.0),
    ("555 123", ["(555) 123"] * 10, 1.0),
    ("555-123", ["(555) 123"] * 10, 1.0),
    ("red", ["red"] * 3 + ["dark red"] * 7, 0.9),
    ("Dark red.", ["red"] * 3 + ["dark red"] * 7, 1.0),
    ("red", ["red"] * 2 + ["maroon"] * 8, 0.6),
    ("." * 40 + "x", ["x"] * 10, 0.0),  # only the first 32 periods are deleted
    ("1, 2", ["1 2"] * 10, 1.0),
    ("hello world?", TEN_HELLO, 1.0),
    ("hello@world", TEN_HELLO, 1.0),
    ("<hello>", ["hello"] * 10, 1.0),
    ("hello world!", ["hello world"] * 2 + ["hi"] * 8, 0.6),
]


SCENE = ["a beach at sunset", "a snowy mountain", "a busy street", "a kitchen"]
COUNT = ["2", "3", "4", "5"]
REL = [
    "The suitcase is on the book.",
    "The suitcase is beneath the cat.",
    "The suitcase is beneath the bed.",
    "The suitcase is beneath the book.",
]
TRUE_FALSE = ["True", "False"]
# MMStar (options as its questions list them inline): VLMEvalKit's `can_infer` verdict at e8e78f05, run on
# each output (letter, 'Z' refusal, or None = unresolved, which `mcq_vanilla_eval` scores as 'Z', wrong)
MMSTAR = [
    ("A", SCENE, "A"),
    ("B.", SCENE, "B"),
    ("(C)", SCENE, "C"),
    ("D: a kitchen", SCENE, "D"),
    ("The answer is B", SCENE, "B"),
    ("Answer: C", SCENE, "C"),
    ("a snowy mountain", SCENE, "B"),
    ("It looks like a busy street.", SCENE, "C"),
    ("The image shows a beach at sunset with the sun low over the water", SCENE, "A"),
    ("kitchen", SCENE, None),
    ("a beach or a kitchen", SCENE, "D"),
    ("A. a beach at sunset", SCENE, "A"),
    ("Option D", SCENE, "D"),
    ("I would go with B here", SCENE, "B"),
    ("B because the mountain is covered in snow and the sky is grey", SCENE, None),
    ("The correct answer is **D**.", SCENE, "D"),
    ("E", SCENE, None),
    ("Z", SCENE, "Z"),
    ("", SCENE, None),
    ("Cannot determine the answer", SCENE, "Z"),
    ("Sorry, I can't help with images of people yet.", SCENE, "Z"),
    ("I'm sorry, but without the image provided I cannot choose.", SCENE, "Z"),
    ("A or B", SCENE, None),
    ("Failed to obtain answer via API", SCENE, None),
    ("a", SCENE, None),
    ("b)", SCENE, None),
    ("answer is c", SCENE, "C"),
    ("3", COUNT, "B"),
    ("There are 3 apples", COUNT, None),
    ("B", COUNT, "B"),
    ("(B) 3", COUNT, "B"),
    ("The answer is 4", COUNT, None),
    ("C. 4", COUNT, "C"),
    ("5 apples, so D", COUNT, "D"),
    ("2 or 3", COUNT, None),
    ("I count five", COUNT, None),
    ("4.", COUNT, "C"),
    ("The answer is D.", COUNT, "D"),
    ("Answer: A) 2", COUNT, "A"),
    ("A 2", COUNT, "A"),
    ("**C**", COUNT, "C"),
    ("The suitcase is beneath the cat.", REL, "B"),
    ("B", REL, "B"),
    ("The suitcase is on the book", REL, None),
    ("beneath the bed", REL, None),
    ("the suitcase is beneath the book.", REL, "D"),
    ("A is wrong; D", REL, None),
    ("D. The suitcase is beneath the book.", REL, "D"),
    ("Neither", REL, None),
    ("the answer is d", REL, "D"),
    ("True", TRUE_FALSE, "A"),
    ("False", TRUE_FALSE, "B"),
    ("false.", TRUE_FALSE, "B"),
    ("It is true", TRUE_FALSE, "A"),
    ("A", TRUE_FALSE, "A"),
    ("B: False", TRUE_FALSE, "B"),
    ("True or False", TRUE_FALSE, None),
    ("not true", TRUE_FALSE, "A"),
    ("The statement is false", TRUE_FALSE, None),
    ("C", TRUE_FALSE, None),
    ("[A]", SCENE, "A"),
    ("{B}", SCENE, "B"),
    ("#C", SCENE, "C"),
    ("A?", SCENE, None),
    ("'B'", SCENE, None),
    ("A/B", SCENE, None),
    ("Reasoning first.\nFinal: C", SCENE, "C"),
    ("C is the answer, not A", SCENE, None),
]


# POPE: VLMEvalKit's `YOrN_Extraction` verdict at e8e78f05, run on each output (Unknown is wrong)
POPE = [
    ("Yes", "Yes"),
    ("No", "No"),
    ("yes", "Yes"),
    ("no", "No"),
    ("YES", "Yes"),
    ("NO", "No"),
    ("Yes.", "Yes"),
    ("No.", "No"),
    ("Yes, there is a dog in the image.", "Yes"),
    ("No, there is no dog.", "No"),
    ("There is no dog in the image.", "No"),
    ("There is a dog in the image.", "Unknown"),
    ("yes and no", "Unknown"),
    ("Yes-no", "Unknown"),
    ("yes/no", "Unknown"),
    ("no-one knows", "No"),
    ("No one", "No"),
    ("I don't know", "Unknown"),
    ("", "Unknown"),
    ("   ", "Unknown"),
    ("Not sure", "Unknown"),
    ("nope", "Unknown"),
    ("yeah", "Unknown"),
    ("Yes!", "Yes"),
    ("No?", "No"),
    ("(yes)", "Yes"),
    ("[no]", "No"),
    ('"Yes"', "Yes"),
    ("'yes'", "Unknown"),
    ("yes'", "Unknown"),
    ("Yes;no", "Unknown"),
    ("Yes; no", "Unknown"),
    ("yes,no", "Unknown"),
    ("yes, no", "Unknown"),
    ("yes,1,000", "Unknown"),
    ("Yes 1,000 no", "Unknown"),
    ("no.", "No"),
    ("no...", "No"),
    ("The answer is yes.", "Yes"),
    ("The answer is no.", "No"),
    ("Answer: Yes", "Yes"),
    ("answer:no", "Unknown"),
    ("Yes\nNo", "Unknown"),
    ("Yes\n", "Yes"),
    ("\nno", "No"),
    ("yes.no", "Unknown"),
    ("yes.\nno", "Unknown"),
    ("Yes, definitely.", "Yes"),
    ("Definitely not.", "Unknown"),
    ("Absolutely yes", "Yes"),
    ("no, no, no", "No"),
    ("yes yes", "Yes"),
    ("Yesterday", "Unknown"),
    ("Nobody", "Unknown"),
    ("no_dog", "No"),
    ("yes_", "Yes"),
    ("yes-", "Yes"),
    ("-yes", "Yes"),
    ("yes+", "Yes"),
    ("yes=", "Yes"),
    ("<yes>", "Yes"),
    ("yes@", "Yes"),
    ("yes`", "Yes"),
    ("yes\\", "Yes"),
    ("{no}", "No"),
    ("no!", "No"),
    ("No , there is not", "No"),
    ("yes ,", "Yes"),
    ("Y", "Unknown"),
    ("N", "Unknown"),
    ("Sí", "Unknown"),
    (
        "no." * 40 + " yes",
        "Yes",
    ),
]
# (gold, output, category) and `POPE_rating`'s figures for them at e8e78f05 (run; divided by 100):
# name -> (accuracy, precision, recall, F1); the last row lists two categories and is counted in both
POPE_TABLE = [
    ("yes", "Yes", "adversarial"),
    ("yes", "No", "adversarial"),
    ("no", "Yes", "adversarial"),
    ("no", "no", "adversarial"),
    ("yes", "yes.", "popular"),
    ("yes", "I am not sure", "popular"),
    ("no", "No.", "popular"),
    ("no", "nope", "popular"),
    ("yes", "Yes, there is.", "random"),
    ("no", "Yes", "random"),
    ("no", "yes", "random"),
    ("yes", "no", "random,popular"),
]
POPE_RATING = {
    "overall": (0.3846153846153847, 0.5, 0.42857142857142855, 0.4615384615384615),
    "popular": (0.4, 1.0, 0.33333333333333326, 0.5),
    "random": (0.25, 0.33333333333333326, 0.5, 0.4),
    "adversarial": (0.5, 0.5, 0.5, 0.5),
}


YES_NO_OPTS = ["yes", "no"]
THREE = ["sandpaper", "ice", "wood"]
FIVE = ["Arizona", "Nevada", "Utah", "Colorado", "New Mexico"]
WEATHER = ["weather", "climate"]
# ScienceQA-IMG (two to five options): VLMEvalKit's `can_infer` verdict at e8e78f05, run on each output
SCIENCEQA = [
    ("A", YES_NO_OPTS, "A"),
    ("B", YES_NO_OPTS, "B"),
    ("C", YES_NO_OPTS, None),
    ("yes", YES_NO_OPTS, "A"),
    ("No.", YES_NO_OPTS, "B"),
    ("The answer is A.", YES_NO_OPTS, "A"),
    ("A. yes", YES_NO_OPTS, "A"),
    ("B. no", YES_NO_OPTS, "B"),
    ("yes or no", YES_NO_OPTS, None),
    ("Yes, it is.", YES_NO_OPTS, None),
    ("nope", YES_NO_OPTS, "B"),
    ("not", YES_NO_OPTS, "B"),
    ("A", THREE, "A"),
    ("(B)", THREE, "B"),
    ("C.", THREE, "C"),
    ("D", THREE, None),
    ("ice", THREE, "B"),
    ("Ice is smoother.", THREE, "B"),
    ("sandpaper and wood", THREE, None),
    ("The smoothest is ice, because its surface has no bumps at all.", THREE, None),
    ("B) ice", THREE, "B"),
    ("Answer: C", THREE, "C"),
    ("The answer is C", THREE, "C"),
    ("answer is d", THREE, None),
    ("wooden", THREE, "C"),
    ("E", FIVE, "E"),
    ("(E)", FIVE, "E"),
    ("E. New Mexico", FIVE, "E"),
    ("The answer is E", FIVE, "E"),
    ("The answer is D", FIVE, "D"),
    ("New Mexico", FIVE, "E"),
    ("Utah", FIVE, "C"),
    ("nevada.", FIVE, "B"),
    ("Mexico", FIVE, None),
    ("Arizona or Utah", FIVE, None),
    ("I think E", FIVE, "E"),
    ("E is correct", FIVE, "E"),
    ("Option E is the right one here", FIVE, None),
    ("F", FIVE, None),
    ("A B", FIVE, None),
    ("The state highlighted is Colorado.", FIVE, "D"),
    ("colorado", FIVE, "D"),
    ("**E**", FIVE, "E"),
    ("weather", WEATHER, "A"),
    ("climate", WEATHER, "B"),
    ("Climate.", WEATHER, "B"),
    ("It describes the weather", WEATHER, "A"),
    ("B", WEATHER, "B"),
    ("A: weather", WEATHER, "A"),
    ("Z", WEATHER, "Z"),
    ("Cannot determine the answer", WEATHER, "Z"),
    ("I'm sorry, but without the image provided", WEATHER, "Z"),
    ("", WEATHER, None),
    ("A.", WEATHER, "A"),
    ("a", WEATHER, None),
    ("The passage tells about the weather, so the answer is A", WEATHER, "A"),
    ("answer is B", WEATHER, "B"),
    ("Failed to obtain answer via API", WEATHER, None),
    ("B. climate\nA is wrong", WEATHER, "B"),
    ("C", WEATHER, None),
    ("The answer is (B)", WEATHER, "B"),
    ("#A", WEATHER, "A"),
    ("{B}", WEATHER, "B"),
]


def test_golden_tables_are_large_enough():
    assert (
        min(len(MMBENCH), len(MMMU_CHOICE) + len(MMMU_OPEN), len(TEXTVQA), len(MMSTAR), len(POPE), len(SCIENCEQA)) >= 60
    )


@pytest.mark.parametrize("output,choices,expected", MMBENCH)
def test_mmbench_matches_vlmevalkit_exact_matching(output, choices, expected):
    assert mmbench.match_option(output, choices) == expected


@pytest.mark.parametrize("output,choices,expected", MMSTAR)
def test_mmstar_matches_vlmevalkit_vanilla_exact_matching(output, choices, expected):
    gold = "ABCD".index(expected) if expected in ("A", "B", "C", "D") else 0
    rec = {"id": "q", "choices": choices, "answer": {"label": gold, "text": None, "all": []}, "meta": {}}
    rows, summary = mmstar.score_records([rec], [output])
    assert rows == [
        {"parsed": expected, "resolved": expected not in (None, "Z"), "score": float(expected not in (None, "Z"))}
    ]
    assert summary["protocol"] == "mmstar"


def test_mmstar_scores_a_wrong_letter_zero():
    rec = {"id": "q", "choices": SCENE, "answer": {"label": 2, "text": "C", "all": ["C"]}, "meta": {}}
    rows, _ = mmstar.score_records([rec, rec, rec], ["B", "C", "Z"])
    assert [r["score"] for r in rows] == [0.0, 1.0, 0.0] and [r["resolved"] for r in rows] == [True, True, False]


@pytest.mark.parametrize("output,choices,expected", SCIENCEQA)
def test_scienceqa_matches_vlmevalkit_vanilla_exact_matching(output, choices, expected):
    wrong = 1 if expected == "A" else 0
    for gold, verdict in ((LETTERS_ABCDE.find(expected or "?"), 1.0), (wrong, 0.0)):
        if gold < 0:  # unresolved or a refusal: wrong against every gold
            gold, verdict = 0, 0.0
        rec = {"id": "q", "choices": choices, "answer": {"label": gold, "text": None, "all": []}, "meta": {}}
        rows, _ = scienceqa.score_records([rec], [output])
        assert rows == [{"parsed": expected, "resolved": expected not in (None, "Z"), "score": verdict}]


@pytest.mark.parametrize("output,expected", POPE)
def test_pope_matches_vlmevalkit_yes_no_extraction(output, expected):
    assert pope.extract_yes_no(output) == expected
    rec = {"id": "q", "choices": None, "answer": {"label": None, "text": "no", "all": ["no"]}, "meta": {}}
    rows, _ = pope.score_records([rec], [output])
    assert rows == [{"parsed": expected, "resolved": expected != "Unknown", "score": float(expected == "No")}]


def test_pope_rating_matches_vlmevalkit():
    recs = [
        {"id": f"q{i}", "choices": None, "answer": {"label": None, "text": g, "all": [g]}, "meta": {"category": c}}
        for i, (g, _, c) in enumerate(POPE_TABLE)
    ]
    rows, summary = pope.score_records(recs, [o for _, o, _ in POPE_TABLE])
    got = {"overall": summary["overall"], **summary["per_category"]}
    assert set(got) == set(POPE_RATING)
    for name, (acc, precision, recall, f1) in POPE_RATING.items():
        fig = got[name]
        assert (fig["accuracy"], fig["precision"], fig["recall"], fig["f1"]) == pytest.approx(
            (acc, precision, recall, f1)
        )
    assert summary["overall"]["questions"] == 13  # 12 rows, one of them in two categories
    assert summary["overall"]["yes_ratio"] == pytest.approx(6 / 13)  # answers read as yes
    assert [r["score"] for r in rows[:4]] == [1.0, 0.0, 0.0, 1.0]


@pytest.mark.parametrize("output,choices,expected", MMMU_CHOICE)
def test_mmmu_choice_matches_official(output, choices, expected):
    assert mmmu.parse_multi_choice(output, choices) == expected


@pytest.mark.parametrize("output,golds,expected", MMMU_OPEN)
def test_mmmu_open_matches_official(output, golds, expected):
    assert mmmu.eval_open(golds, mmmu.parse_open(output)) is expected


@pytest.mark.parametrize("output,answers,expected", TEXTVQA)
def test_textvqa_matches_evalai(output, answers, expected):
    assert textvqa.vqa_accuracy(output, answers) == pytest.approx(expected, abs=1e-12)


def test_unresolved_mmmu_choice_is_random_per_record_and_counted():
    recs = [
        {"id": f"q{i}", "choices": COLOURS, "answer": {"label": 0, "text": None, "all": []}, "meta": {}}
        for i in range(40)
    ]
    rows, _ = mmmu.score_records(recs, ["no idea"] * 40, seed=3)
    again, _ = mmmu.score_records(recs, ["???"] * 40, seed=3)  # another unresolved output, same draws
    assert [r["parsed"] for r in rows] == [r["parsed"] for r in again]
    assert len({r["parsed"] for r in rows}) > 1 and not any(r["resolved"] for r in rows)


def test_thinking_is_stripped_before_parsing():
    assert strip_thinking("<think>maybe A, maybe B</think>\n\nC") == "C"
    assert strip_thinking("reasoning about A</think>B") == "B"  # the template opened <think> in the prompt
    assert strip_thinking("<think>A or B, let me think") == ""  # cut before closing: no answer
    assert strip_thinking("plain B") == "plain B"
    rec = {"id": "x", "choices": ANIMALS, "answer": {"label": 2, "text": None, "all": []}, "meta": {}}
    rows, _ = score(
        get_protocol("mmbench"), [rec, rec], ["<think>A? B?</think>C", "<think>C is likely"], 0, thinking=True
    )
    assert [r["parsed"] for r in rows] == ["C", None] and [r["score"] for r in rows] == [1.0, 0.0]
    # an Instruct model's output is parsed as it is: no reasoning block is cut from it
    rows, _ = score(get_protocol("mmbench"), [rec], ["The answer is C </think>"], 0)
    assert [r["parsed"] for r in rows] == ["C"]
    rows, _ = score(get_protocol("mmbench"), [rec], ["The answer is C </think>"], 0, thinking=True)
    assert [r["parsed"] for r in rows] == [None]
