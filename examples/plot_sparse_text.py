"""
===========================================
Sparse text features with HashingVectorizer
===========================================

Bags of words are wide and sparse. ``HashingVectorizer`` turns sentences
into a CSR matrix of 2**16 columns with a handful of non-zeros per row, and
fastmlp trains on it without densifying. The sentences are generated here
from three small vocabularies (sport, cooking, weather) mixed with common
words and stray words of any topic, so some sentences are ambiguous; nothing
is downloaded.
"""

import warnings

import matplotlib.pyplot as plt
import numpy as np
from sklearn.exceptions import ConvergenceWarning
from sklearn.feature_extraction.text import HashingVectorizer
from sklearn.metrics import ConfusionMatrixDisplay
from sklearn.model_selection import train_test_split

from fastmlp import MLPClassifier

warnings.filterwarnings("ignore", category=ConvergenceWarning)  # a fixed number of epochs
topics = {
    "sport": "match goal team score player coach league win season referee",
    "cooking": "recipe oven salt flour butter bake onion garlic simmer dough",
    "weather": "rain cloud wind storm forecast sunny cold snow temperature humid",
}
common = "the a of and today we very some new good it was on at".split()
rng = np.random.RandomState(0)
sentences, labels = [], []
for _ in range(1500):
    topic = rng.choice(list(topics))
    words = list(rng.choice(topics[topic].split(), size=2)) + list(rng.choice(common, size=6))
    for other in rng.choice(list(topics), size=2):  # two stray words, of any topic
        words.append(rng.choice(topics[other].split()))
    rng.shuffle(words)
    sentences.append(" ".join(words))
    labels.append(topic)
print(sentences[0], "->", labels[0])

X = HashingVectorizer(n_features=2**16, alternate_sign=False).fit_transform(sentences)
print(f"X: {X.shape[0]} rows x {X.shape[1]} columns, {X.nnz / X.shape[0]:.1f} non-zeros per row")
X_train, X_test, y_train, y_test = train_test_split(X, labels, random_state=0)

model = MLPClassifier(
    hidden_layer_sizes=(32,),
    solver="sgd",
    batch_size=16,
    learning_rate_init=0.05,
    max_iter=30,
    random_state=0,
)
model.fit(X_train, y_train)  # CSR in, no dense copy
print(f"test accuracy {model.score(X_test, y_test):.4f}")

fig, (curve, confusion) = plt.subplots(1, 2, figsize=(11, 4), constrained_layout=True)
curve.plot(range(1, model.n_iter_ + 1), model.loss_curve_)
curve.set(
    xlabel="epoch",
    ylabel="training loss",
    yscale="log",
    title="Training on a 1125 x 65536 CSR matrix",
)
ConfusionMatrixDisplay.from_estimator(model, X_test, y_test, ax=confusion, colorbar=False)
confusion.set_title(f"Test accuracy {model.score(X_test, y_test):.3f}")
plt.show()
