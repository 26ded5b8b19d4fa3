"""
=============================================
One forward and backward pass, by hand
=============================================

A 2-4-2 network (tanh hidden layer, softmax output, cross-entropy loss) on
one sample, in matrix form with NumPy:

* forward: :math:`z_1 = x W_1 + b_1`, :math:`a_1 = \\tanh(z_1)`,
  :math:`z_2 = a_1 W_2 + b_2`, :math:`p = \\mathrm{softmax}(z_2)`,
  :math:`L = -\\sum_k y_k \\log p_k`;
* backward: :math:`\\delta_2 = p - y`, :math:`\\partial L / \\partial W_2 = a_1^T \\delta_2`,
  :math:`\\delta_1 = (\\delta_2 W_2^T) \\odot (1 - a_1^2)`,
  :math:`\\partial L / \\partial W_1 = x^T \\delta_1` (and the :math:`\\delta`
  themselves for the biases).

The same numbers come out of :meth:`fastmlp.Network.loss_and_gradients`. One
gradient step then lowers the loss.
"""

import matplotlib.pyplot as plt
import numpy as np

from fastmlp import Network

net = Network([2, 4, 2], activation="tanh", output="softmax", loss="log_loss", random_state=0)
W1, W2 = net.coefs_
b1, b2 = net.intercepts_
x = np.array([[0.5, -1.0]])  # one sample, as a 1 x 2 row
y = np.array([[0.0, 1.0]])  # its class, one-hot

# %%
# Forward pass
z1 = x @ W1 + b1
a1 = np.tanh(z1)
z2 = a1 @ W2 + b2
p = np.exp(z2 - z2.max()) / np.exp(z2 - z2.max()).sum()
loss = -np.sum(y * np.log(p))

# %%
# Backward pass
delta2 = p - y
grad_W2, grad_b2 = a1.T @ delta2, delta2[0]
delta1 = (delta2 @ W2.T) * (1 - a1**2)
grad_W1, grad_b1 = x.T @ delta1, delta1[0]

# %%
# The library's loss and gradients at the same weights
net_loss, (net_W1, net_W2), (net_b1, net_b2) = net.loss_and_gradients(x, y)
print(f"loss by hand {loss:.12f}, Network {net_loss:.12f}")
by_hand = np.concatenate([g.ravel() for g in (grad_W1, grad_W2, grad_b1, grad_b2)])
library = np.concatenate([g.ravel() for g in (net_W1, net_W2, net_b1, net_b2)])
print("largest difference of the 22 gradients:", np.abs(by_hand - library).max())

# %%
# One gradient-descent step, and the loss after it
learning_rate = 0.5
net.coefs_ = [W1 - learning_rate * grad_W1, W2 - learning_rate * grad_W2]
net.intercepts_ = [b1 - learning_rate * grad_b1, b2 - learning_rate * grad_b2]
loss_after, _, _ = net.loss_and_gradients(x, y)
print(f"loss before the step {loss:.4f}, after {loss_after:.4f}")

fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(11, 3.8), constrained_layout=True)
names = [f"W1[{i},{j}]" for i in range(2) for j in range(4)]
names += [f"W2[{i},{j}]" for i in range(4) for j in range(2)]
names += [f"b1[{j}]" for j in range(4)] + [f"b2[{j}]" for j in range(2)]
position = np.arange(len(names))
ax1.bar(position - 0.2, by_hand, width=0.4, label="by hand (NumPy)")
ax1.bar(position + 0.2, library, width=0.4, label="Network.loss_and_gradients")
ax1.set_xticks(position, names, rotation=90, fontsize=7)
ax1.set(ylabel="dL / dparameter", title="The 22 gradients")
ax1.legend()
ax2.bar(["before", "after one step"], [loss, loss_after], color=["tab:gray", "tab:green"])
ax2.set(ylabel="cross-entropy loss", title=f"One step of gradient descent (lr={learning_rate})")
plt.show()
