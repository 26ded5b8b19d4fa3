"""
=================================================
Early stopping, callbacks and learned features
=================================================

With ``early_stopping=True`` a validation split is held out and training stops
when its score has not improved for ``n_iter_no_change`` epochs; fastmlp keeps
the validation loss per epoch in ``validation_loss_curve_`` beside
scikit-learn's ``validation_scores_``. A callback, called after each epoch
with the estimator and a dict of what happened, can log or stop a fit.

The last hidden layer is also a learned representation: ``transform`` hands
it to another estimator, here a logistic regression in one pipeline.
"""

import warnings

import matplotlib.pyplot as plt
from sklearn.datasets import load_digits
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import train_test_split
from sklearn.pipeline import make_pipeline

from fastmlp import MLPClassifier

X, y = load_digits(return_X_y=True)
X_train, X_test, y_train, y_test = train_test_split(X / 16.0, y, random_state=0, stratify=y)


# %%
# Early stopping, and a callback that prints every tenth epoch
def report(model, info):
    if info["epoch"] % 10 == 0:
        loss, score = info["loss"], info["validation_score"]
        print(f"epoch {info['epoch']}: loss {loss:.4f}, validation accuracy {score:.4f}")
    return False  # True would stop the fit


model = MLPClassifier(
    hidden_layer_sizes=(128,),
    early_stopping=True,
    n_iter_no_change=10,
    max_iter=300,
    random_state=0,
    callbacks=[report],
).fit(X_train, y_train)
print(f"stopped after {model.n_iter_} epochs; test accuracy {model.score(X_test, y_test):.4f}")

# %%
# The hidden layer's 16 features feed a logistic regression (the network
# trains for a fixed 200 epochs, hence the warning filter)
warnings.filterwarnings("ignore", category=ConvergenceWarning)
features = make_pipeline(
    MLPClassifier(hidden_layer_sizes=(16,), max_iter=200, random_state=0),
    LogisticRegression(max_iter=1000),
)
features.fit(X_train, y_train)
print(f"16 learned features + logistic regression: {features.score(X_test, y_test):.4f}")

fig, (losses, accuracy) = plt.subplots(1, 2, figsize=(11, 4), constrained_layout=True)
epochs = range(1, model.n_iter_ + 1)
losses.plot(epochs, model.loss_curve_, label="training loss")
losses.plot(epochs, model.validation_loss_curve_, label="validation loss")
best = model.validation_scores_.index(model.best_validation_score_) + 1
losses.axvline(best, color="k", linestyle=":", label=f"best validation score (epoch {best})")
losses.set(xlabel="epoch", ylabel="log-loss", yscale="log", title="Early stopping")
losses.legend()
accuracy.plot(epochs, model.validation_scores_, color="tab:green")
accuracy.set(xlabel="epoch", ylabel="validation accuracy", title="Validation score per epoch")
plt.show()
