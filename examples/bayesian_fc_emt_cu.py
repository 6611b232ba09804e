"""A Bayesian force-constant model of EMT Cu with the core (no AiiDA; about a minute on 2 CPU cores).

    python examples/bayesian_fc_emt_cu.py

Fits a 4th-order expansion (cut-offs 3.5 / 3.0 / 3.0 A) of a 32-atom Cu supercell to EMT forces of
random displacements (Gaussian, 0.07 A: about 300 K), 5 to 40 structures, and compares on 20 other
structures the force RMSE with the bracket of Callsen et al.: beta^-1/2 <= RMSE <= sqrt(1/beta + mean eps_B^2).
"""

import contextlib
import io

import numpy as np
from ase.build import bulk
from ase.calculators.emt import EMT

from aiida_anharmal.core.bayesian.convergence import force_errors
from aiida_anharmal.core.bayesian.model import BayesianForceConstantModel

primitive, ideal = bulk('Cu', 'fcc', a=3.6), bulk('Cu', 'fcc', a=3.6, cubic=True).repeat(2)
rng = np.random.default_rng(0)


def labelled(n):
    frames = []
    for _ in range(n):
        atoms = ideal.copy()
        atoms.positions += rng.normal(0.0, 0.07, atoms.positions.shape)
        atoms.calc = EMT()
        frames.append((atoms.positions.copy(), atoms.get_forces()))
    return frames


with contextlib.redirect_stdout(io.StringIO()):  # hiphive prints its cluster space
    model = BayesianForceConstantModel(primitive, [3.5, 3.0, 3.0], ideal)
print(f'{model.n_parameters} parameters, orders 2-{model.n_max}')
train, test = labelled(40), labelled(20)
print(' N_data  beta^-1/2  mean eps_B  test RMSE  sqrt(1/beta + mean eps_B^2)  (meV/A)')
done = 0
for n in (5, 10, 20, 40):
    for positions, forces in train[done:n]:
        model.add(positions, forces)
    done = n
    fit = model.fit()
    errors = force_errors(model, test)
    rmse, mean_eps, upper = errors['forces_rmse'], errors['mean_eps_b'], errors['bracket'][1]
    print(f'{n:7d}  {1000 * fit.noise:9.2f}  {1000 * mean_eps:10.3f}  {1000 * rmse:9.2f}  {1000 * upper:27.2f}')
